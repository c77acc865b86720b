// `safegatectl keys show|init`: the gateway's transfer keys (docs/transfers.md, "Keys").
//
//   show  prints the public halves of DATA_DIR/transfer_signing.key and
//         DATA_DIR/transfer_sealing.key as TOML lines for the [[peer]] block of this gateway
//         in another gateway's registry (transfer::KeysShowText). Never creates a key: keys
//         made by whoever runs the tool might not be readable by the gateway's user.
//   init  creates whichever of the two key files is missing (as safegated does on its first
//         start: 0600, atomically), then prints the same as show. Run it as the gateway's
//         user, before the first start, to exchange keys with a peer in advance.
//
// The area printed comes from --area, or from the configuration --config names (which also
// gives the data directory).
//
// Thread-safety: a command-line action, not for concurrent use on one data directory (the
// key files themselves are created safely even then: the first key in place wins).
#pragma once

#include <map>
#include <ostream>
#include <string>

namespace safegate::ctl {

// Runs `safegatectl keys ACTION` with its options (--name -> value). Writes the keys to
// `out`, messages to `err`. Returns the exit status: 0 success, 1 the keys are missing
// (show) or cannot be read or made, 2 bad usage or a data directory that cannot be used.
int KeysCommand(const std::string& action, const std::map<std::string, std::string>& options,
                std::ostream& out, std::ostream& err);

}  // namespace safegate::ctl
