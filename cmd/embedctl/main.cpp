// embedctl: one CLI::App, one add_*_command per subcommand, parse, run.
// Exit codes: 0 success, 1 a failed call or input, 2 a usage error (see client.hpp).
#include "cmd/embedctl/actors_command.hpp"
#include "cmd/embedctl/client.hpp"
#include "cmd/embedctl/embed_command.hpp"
#include "cmd/embedctl/health_command.hpp"
#include "cmd/embedctl/info_command.hpp"
#include "cmd/embedctl/rerank_command.hpp"
#include "cmd/embedctl/tokenize_command.hpp"
#include "cmd/embedctl/top_command.hpp"

#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

int main(int argc, char** argv) {
  CLI::App app{"embedctl: command line of the embedding service"};
  app.require_subcommand(1);
  embed::cli::add_embed_command(app);
  embed::cli::add_rerank_command(app);
  embed::cli::add_tokenize_command(app);
  embed::cli::add_info_command(app);
  embed::cli::add_health_command(app);
  embed::cli::add_actors_command(app);
  embed::cli::add_top_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code(); // a subcommand's own exit code; it has printed what went wrong
  } catch (const CLI::ParseError& e) {
    // CLI11's codes (105, 106, ...) are not what scripts expect: any usage error is 2.
    return app.exit(e) == 0 ? embed::cli::exit_ok : embed::cli::exit_usage;
  } catch (const std::exception& e) {
    std::cerr << "embedctl: " << e.what() << '\n';
    return embed::cli::exit_failure;
  }
  return embed::cli::exit_ok;
}
