// embedctl: one CLI::App, one add_*_command per subcommand, parse, run.
#include "cmd/embedctl/tokenize_command.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"embedctl: command line of the embedding service"};
  app.require_subcommand(1);
  embed::cli::add_tokenize_command(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
