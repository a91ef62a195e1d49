// gpu-worker: the GPU microservice (serve) and the offline model commands (embed-ids, score-ids).
#include "cmd/gpu-worker/offline_commands.hpp"
#include "cmd/gpu-worker/serve_command.hpp"

#include <CLI/CLI.hpp>

int main(int argc, char** argv) {
  CLI::App app{"gpu-worker: serves a Qwen3 embedding / reranker model over gRPC (worker.v1)"};
  app.require_subcommand(1);
  embed::worker_cli::add_serve_command(app);
  embed::worker_cli::add_offline_commands(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
