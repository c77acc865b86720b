// safegated: parse arguments, load the configuration, run the server. Nothing else.
//
//   safegated --config FILE         run the gateway
//   safegated --check-config FILE   load and validate FILE, its registry and TLS files
//   safegated --print-config FILE   print the effective configuration, defaults included
//   safegated --version
//
// Exit status: 0 success, 1 run-time failure (cannot bind, cannot open the store),
// 2 configuration or usage error (the message names file, line and key).
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "config/config.h"
#include "daemon/core/clock.h"
#include "daemon/core/gateway.h"
#include "daemon/server/server.h"

namespace {

constexpr int kExitRuntime = 1;
constexpr int kExitConfig = 2;

#ifndef SAFEGATE_VERSION
#define SAFEGATE_VERSION "unknown"
#endif

int Usage(std::FILE* out) {
  std::fputs(
      "usage: safegated --config FILE | --check-config FILE | --print-config FILE | "
      "--version\n",
      out);
  return out == stdout ? 0 : kExitConfig;
}

struct Loaded {
  std::shared_ptr<const safegate::config::Config> config;
  std::shared_ptr<const safegate::config::Registry> registry;
};

// Loading is the one place exceptions are used; they stop here.
int Load(const std::string& path, bool with_registry, Loaded& out) {
  try {
    out.config =
        std::make_shared<const safegate::config::Config>(safegate::config::LoadConfig(path));
    if (with_registry) {
      out.registry = std::make_shared<const safegate::config::Registry>(
          safegate::config::LoadRegistry(out.config->registry));
    }
    return 0;
  } catch (const safegate::config::ConfigError& e) {
    std::fprintf(stderr, "%s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), e.what());
  }
  return kExitConfig;
}

// The sharing policy the configuration names (none: the placeholder, which the server warns
// about). A refused file is a configuration error: every problem, with file:line.
int LoadPolicy(const safegate::config::Config& config,
               std::shared_ptr<const safegate::DeliveryPolicy>& out) {
  if (config.policy.empty()) return 0;
  auto policy = safegate::MakePolicyDeliveryPolicy(config.policy);
  if (!policy.ok()) {
    std::fprintf(stderr, "%s: %s\n", config.policy.c_str(), policy.status().detail().c_str());
    for (const auto& p : policy.status().problems()) {
      std::fprintf(stderr, "  %s: %s\n", p.where.c_str(), p.what.c_str());
    }
    return kExitConfig;
  }
  out = std::move(policy).value();
  return 0;
}

int CheckConfig(const std::string& path) {
  Loaded loaded;
  if (int rc = Load(path, true, loaded); rc != 0) return rc;
  std::shared_ptr<const safegate::DeliveryPolicy> policy;
  if (int rc = LoadPolicy(*loaded.config, policy); rc != 0) return rc;
  if (auto s = safegate::server::CheckTlsFiles(*loaded.config); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), s.detail().c_str());
    return kExitConfig;
  }
  std::printf("%s: ok\n", path.c_str());
  return 0;
}

int PrintConfig(const std::string& path) {
  Loaded loaded;
  if (int rc = Load(path, false, loaded); rc != 0) return rc;
  std::fputs(safegate::config::PrintConfig(*loaded.config).c_str(), stdout);
  return 0;
}

int Serve(const std::string& path) {
  Loaded loaded;
  if (int rc = Load(path, true, loaded); rc != 0) return rc;
  // The TLS files first (an expired certificate, a key others can read): a gateway that
  // cannot serve should not touch its store.
  if (auto s = safegate::server::CheckTlsFiles(*loaded.config); !s.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), s.detail().c_str());
    return kExitConfig;
  }
  std::shared_ptr<const safegate::DeliveryPolicy> policy;
  if (int rc = LoadPolicy(*loaded.config, policy); rc != 0) return rc;
  safegate::SystemClock clock;
  safegate::GatewayOptions options;
  options.config = loaded.config;
  options.registry = loaded.registry;
  options.clock = &clock;
  options.policy = std::move(policy);  // null: the placeholder
  // A restart straight after a kill -9 can find the dead gateway's lock not yet released.
  options.lock_wait = std::chrono::seconds(10);
  auto gateway = safegate::Gateway::Open(std::move(options));
  if (!gateway.ok()) {
    std::fprintf(stderr, "%s: cannot open the store in %s: %s\n", path.c_str(),
                 loaded.config->data_dir.c_str(), gateway.status().ToString().c_str());
    return kExitRuntime;
  }
  auto server =
      safegate::server::Server::Create(loaded.config, loaded.registry, gateway->get(), &clock);
  if (!server.ok()) {
    (*gateway)->Shutdown();
    const bool config_problem = server.status().code() == safegate::ErrorCode::kInvalidInput;
    std::fprintf(stderr, "%s: %s\n", path.c_str(), server.status().detail().c_str());
    return config_problem ? kExitConfig : kExitRuntime;
  }
  const auto status = (*server)->Run();
  if (!status.ok()) {
    (*gateway)->Shutdown();
    std::fprintf(stderr, "%s: %s\n", path.c_str(), status.ToString().c_str());
    return kExitRuntime;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2) {
    const std::string_view arg = argv[1];
    if (arg == "--version") {
      std::printf("safegated %s\n", SAFEGATE_VERSION);
      return 0;
    }
    if (arg == "--help" || arg == "-h") return Usage(stdout);
  }
  if (argc != 3) return Usage(stderr);
  const std::string_view mode = argv[1];
  const std::string file = argv[2];
  if (mode == "--config") return Serve(file);
  if (mode == "--check-config") return CheckConfig(file);
  if (mode == "--print-config") return PrintConfig(file);
  return Usage(stderr);
}
