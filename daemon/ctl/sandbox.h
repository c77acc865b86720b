// The sandbox: real gateways for the example areas on one machine, for integrators and
// acceptance tests (API.md, "The sandbox"), in the spirit of NHS MESH's sandbox.
//
// SandboxUp makes development certificates for every agency (certs/make-dev-certs), writes
// each area's agency registry and gateway config, starts one detached safegated per area on
// loopback ports the kernel picks, rewrites each config with the concrete ports (so
// `safegated --config CONFIG` restarts that gateway on the same addresses with the same data),
// waits until each answers /healthz, and writes DIR/sandbox.json. The daemons keep running.
//
// Peers: each gateway's registry lists every other area of the sandbox as a [[peer]] whose
// endpoint is that gateway's URL, identified by that gateway's certificate
// (certs/gateway-<area>.pem) and trusted by its public transfer keys. Every area's transfer
// keys are made in its data directory (transfer::GatewayKeys::LoadOrCreate, as safegated
// would) before any registry is written. Areas start one after another, so an area started
// later is written knowing the earlier areas' URLs; once all are up, the earlier areas'
// registries are rewritten with the later URLs and those gateways are sent SIGHUP, which
// re-reads the registry.
//
// sandbox.json (API.md, "The sandbox") has, per area, besides url, admin_url, pid, data_dir,
// config and agencies: gateway_cert and gateway_key (the gateway's own certificate and key,
// which it presents to its peers, so a test can act as that gateway) and signing_public_key
// and sealing_public_key (base64, as in the peers' registries).
//
// SandboxDown stops every gateway of a sandbox: the pids in sandbox.json and any safegated
// restarted by hand with one of its configs (SIGTERM, then a bounded wait).
//
// Not thread-safe (it is a command-line action); errors come back as Status naming what
// failed and, for a daemon that did not come up, the tail of its log.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "record/status.h"

namespace safegate::ctl {

struct SandboxOptions {
  std::string dir;                 // sandbox directory, created if missing
  std::vector<std::string> areas;  // empty: every example area
  std::string program_path;        // path of the running safegatectl (to find its neighbours)
  std::chrono::milliseconds timeout{30'000};  // bound on each wait (start, health, stop)
};

// The example areas in start order ("bradford", "cambridgeshire").
std::vector<std::string> SandboxAreaNames();

// Prints a line per gateway to stdout on success.
Status SandboxUp(const SandboxOptions& options);
Status SandboxDown(const SandboxOptions& options);

}  // namespace safegate::ctl
