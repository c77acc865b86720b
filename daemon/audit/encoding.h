// Text encodings of the verifiable audit log: lower-case hex for hashes, standard base64
// (RFC 4648 §4, with padding) for entry bytes, signatures and public keys.
//
// Decoders are strict, because their input comes from outside (API clients, proof bundles):
// hex must be lower-case with an even length, base64 must be canonical with padding and no
// whitespace. They return nullopt and leave the explanation to the caller, who knows which
// field was being read.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace safegate::audit {

// Lower-case hex of `bytes`.
std::string ToHex(std::span<const uint8_t> bytes);
std::string ToHex(std::string_view bytes);
// The bytes of lower-case hex text; nullopt for an odd length or any other character
// (upper-case included: the API promises lower-case, so anything else is not ours).
std::optional<std::string> FromHex(std::string_view hex);

// Standard base64 with padding.
std::string ToBase64(std::span<const uint8_t> bytes);
std::string ToBase64(std::string_view bytes);
// The bytes of canonical standard base64; nullopt for anything else (URL-safe alphabet,
// missing padding, whitespace, non-zero padding bits).
std::optional<std::string> FromBase64(std::string_view text);

// Decodes hex or base64 into exactly N bytes; nullopt for bad text or another length.
template <size_t N>
std::optional<std::array<uint8_t, N>> FixedFromHex(std::string_view hex) {
  auto bytes = FromHex(hex);
  if (!bytes || bytes->size() != N) return std::nullopt;
  std::array<uint8_t, N> out;
  for (size_t i = 0; i < N; ++i) out[i] = static_cast<uint8_t>((*bytes)[i]);
  return out;
}
template <size_t N>
std::optional<std::array<uint8_t, N>> FixedFromBase64(std::string_view text) {
  auto bytes = FromBase64(text);
  if (!bytes || bytes->size() != N) return std::nullopt;
  std::array<uint8_t, N> out;
  for (size_t i = 0; i < N; ++i) out[i] = static_cast<uint8_t>((*bytes)[i]);
  return out;
}

}  // namespace safegate::audit
