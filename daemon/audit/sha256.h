#pragma once
// SHA-256 for the audit log and the store: chain hashes, Merkle leaves and nodes, content
// hashes. OpenSSL's implementation uses the CPU's SHA extensions where it has them (several
// times faster than a portable one on audit-entry-sized inputs).
//
// Thread-safe: each thread keeps its own digest context. Never fails: an OpenSSL failure
// here means the library is unusable, and the process aborts rather than write a wrong hash.

#include <array>
#include <cstdint>
#include <initializer_list>
#include <string_view>

namespace safegate::audit {

using Sha256Digest = std::array<uint8_t, 32>;

// SHA-256 of the concatenation of `parts`, in order.
Sha256Digest Sha256Of(std::initializer_list<std::string_view> parts);

}  // namespace safegate::audit
