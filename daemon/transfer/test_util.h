// Helpers for the transfer tests: temporary data directories and the gateways of the example
// areas with real keys. Not part of the library.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "daemon/transfer/gateway_keys.h"

namespace safegate::transfer::testing {

// A fresh directory under the test temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "/safegate-transfer-XXXXXX";
    char* made = ::mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr) << "mkdtemp " << tmpl;
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// One area's gateway: its data directory and its keys.
struct TestGateway {
  explicit TestGateway(std::string area_name) : area(std::move(area_name)) {
    auto loaded = GatewayKeys::LoadOrCreate(dir.path());
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    if (loaded.ok()) keys = std::move(loaded).value();
  }
  // How a peer's registry lists this gateway.
  PeerKeys AsPeer() const {
    return PeerKeys{area, keys->signing_public_key(), keys->sealing_public_key()};
  }
  std::string area;
  TempDir dir;
  std::unique_ptr<GatewayKeys> keys;
};

}  // namespace safegate::transfer::testing
