// `turnout migrate` as a process of its own, for tests that kill a runner mid-migration or run
// two at once. Same arguments as `turnout migrate`.

#include <iostream>
#include <string>
#include <vector>

#include "db/migrate_cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return turnout::db::RunMigrateCommand(args, std::cout, std::cerr);
}
