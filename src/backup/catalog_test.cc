#include "backup/catalog.h"

#include <gtest/gtest.h>

namespace turnout::backup {
namespace {

const std::vector<std::string> kBase = {
    "column public.items #1 id integer not-null",
    "column public.items #2 old_name text null",
    "constraint public.items items_pkey PRIMARY KEY (id)",
    "index public.items CREATE UNIQUE INDEX items_pkey ON public.items USING btree (id)",
    "table public.items r",
};

std::vector<std::string> With(std::vector<std::string> lines, const std::vector<std::string>& add,
                              const std::vector<std::string>& remove = {}) {
  for (const auto& r : remove) std::erase(lines, r);
  lines.insert(lines.end(), add.begin(), add.end());
  return lines;
}

TEST(ClassifySchemaChange, NothingChanged) {
  SchemaChange c = ClassifySchemaChange(kBase, kBase);
  EXPECT_FALSE(c.changed());
  EXPECT_FALSE(c.is_destructive());
}

TEST(ClassifySchemaChange, AddedNullableOrDefaultedColumnsTablesAndIndexesAreAdditive) {
  SchemaChange c = ClassifySchemaChange(
      kBase,
      With(kBase,
           {"column public.items #3 note text null",
            "column public.items #4 token text not-null default=md5((random())::text)",
            "table public.audit r", "column public.audit #1 at timestamp with time zone null",
            "index public.items CREATE INDEX items_note ON public.items USING btree (note)"}));
  EXPECT_TRUE(c.changed());
  EXPECT_FALSE(c.is_destructive()) << ::testing::PrintToString(c.destructive);
  EXPECT_EQ(c.tables, (std::vector<std::string>{"public.audit", "public.items"}));
}

TEST(ClassifySchemaChange, DroppedRenamedRetypedAndNotNullColumnsAreDestructive) {
  // A rename is the old name gone.
  SchemaChange renamed =
      ClassifySchemaChange(kBase, With(kBase, {"column public.items #2 name text null"},
                                       {"column public.items #2 old_name text null"}));
  ASSERT_TRUE(renamed.is_destructive());
  EXPECT_EQ(renamed.destructive[0], "column public.items.old_name is gone");
  EXPECT_EQ(renamed.tables, std::vector<std::string>{"public.items"});

  SchemaChange retyped = ClassifySchemaChange(
      kBase, With(kBase, {"column public.items #2 old_name character varying(20) null"},
                  {"column public.items #2 old_name text null"}));
  ASSERT_TRUE(retyped.is_destructive());
  EXPECT_EQ(retyped.destructive[0],
            "column public.items.old_name changed type from text to character varying(20)");

  EXPECT_TRUE(
      ClassifySchemaChange(kBase, With(kBase, {"column public.items #2 old_name text not-null"},
                                       {"column public.items #2 old_name text null"}))
          .is_destructive());
  EXPECT_TRUE(
      ClassifySchemaChange(kBase, With(kBase, {"column public.items #3 must text not-null"}))
          .is_destructive());
  // Loosening is not: NOT NULL dropped, a default added.
  EXPECT_FALSE(
      ClassifySchemaChange(kBase, With(kBase, {"column public.items #1 id integer null default=0"},
                                       {"column public.items #1 id integer not-null"}))
          .is_destructive());
}

TEST(ClassifySchemaChange, ADroppedTableIsDestructive) {
  SchemaChange c = ClassifySchemaChange(kBase, std::vector<std::string>{});
  ASSERT_TRUE(c.is_destructive());
  EXPECT_NE(std::find(c.destructive.begin(), c.destructive.end(), "table public.items is gone"),
            c.destructive.end());
}

}  // namespace
}  // namespace turnout::backup
