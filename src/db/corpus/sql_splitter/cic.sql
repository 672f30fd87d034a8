-- turnout:no-transaction
CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);
