CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $body$ BEGIN RETURN '$$;'; END $body$;
SELECT E'a\';b', "x;""y" /* a /* b */ c */;
