#include "daemon/ctl/keys.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <string_view>

#include "config/config.h"
#include "daemon/transfer/gateway_keys.h"
#include "record/status.h"

namespace safegate::ctl {
namespace {

namespace fs = std::filesystem;

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

bool IsSlug(std::string_view s) {
  if (s.empty() || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

int Usage(std::ostream& err, const std::string& what) {
  err << "safegatectl: " << what << "\nRun `safegatectl --help` for usage.\n";
  return kExitUsage;
}

// The text printed when no area is known: the two key lines, without `area =`.
std::string KeysWithoutAreaText(const transfer::GatewayKeys& keys) {
  return "# Public transfer keys of this gateway. Paste these lines into the [[peer]] block for\n"
         "# this gateway's area in the other gateway's registry (with its endpoint and\n"
         "# certificate), then reload that gateway. (--area AREA prints the area line too.)\n"
         "signing_public_key = \"" +
         keys.SigningPublicKeyBase64() +
         "\"\n"
         "sealing_public_key = \"" +
         keys.SealingPublicKeyBase64() + "\"\n";
}

// Key files belong to the gateway's user: a key made or read by anyone else is refused by
// the gateway (and by GatewayKeys), so say who should run the tool instead.
bool CheckOwner(const std::string& command, const fs::path& dir, std::ostream& err) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return true;  // missing: reported later
  if (st.st_uid == ::geteuid()) return true;
  err << "safegatectl keys " << command << ": the data directory " << dir.string()
      << " belongs to uid " << st.st_uid << ", not to the user running this (uid " << ::geteuid()
      << "): run it as the gateway's user, e.g. `runuser -u safegate -- safegatectl keys "
      << command << " --data-dir " << dir.string() << "`\n";
  return false;
}

}  // namespace

int KeysCommand(const std::string& action, const std::map<std::string, std::string>& options,
                std::ostream& out, std::ostream& err) {
  if (action != "show" && action != "init") {
    return Usage(err, "unknown keys action \"" + action + "\" (expected show or init)");
  }
  for (const auto& [name, value] : options) {
    if (name != "--data-dir" && name != "--area" && name != "--config") {
      return Usage(err, "option " + name + " does not apply to `keys " + action + "`");
    }
  }
  std::string data_dir, area;
  auto data_dir_option = options.find("--data-dir");
  auto area_option = options.find("--area");
  auto config_option = options.find("--config");
  if (config_option != options.end()) {
    if (data_dir_option != options.end()) {
      return Usage(err, "keys " + action +
                            ": give --data-dir DIR or --config FILE (which names the data "
                            "directory), not both");
    }
    if (config_option->second.empty()) return Usage(err, "option --config needs a value");
    try {
      config::Config config = config::LoadConfig(config_option->second);
      data_dir = config.data_dir;
      area = config.area;
    } catch (const std::exception& e) {
      err << "safegatectl keys " << action << ": " << e.what() << "\n";
      return kExitUsage;
    }
  } else {
    if (data_dir_option == options.end() || data_dir_option->second.empty()) {
      return Usage(err, "keys " + action +
                            ": --data-dir DIR is required (the gateway's data_dir), or "
                            "--config FILE");
    }
    data_dir = data_dir_option->second;
  }
  if (area_option != options.end()) {
    if (!IsSlug(area_option->second)) {
      return Usage(err, "--area: \"" + area_option->second +
                            "\" is not an area slug (a-z, 0-9 and -), e.g. bradford");
    }
    if (!area.empty() && area != area_option->second) {
      return Usage(err, "--area " + area_option->second + " differs from the area \"" + area +
                            "\" of " + config_option->second);
    }
    area = area_option->second;
  }

  std::error_code ec;
  const fs::path dir = fs::absolute(data_dir, ec).lexically_normal();
  if (!CheckOwner(action, dir, err)) return kExitUsage;

  const fs::path signing = dir / transfer::kSigningKeyFile;
  const fs::path sealing = dir / transfer::kSealingKeyFile;
  Result<std::unique_ptr<transfer::GatewayKeys>> keys = Status::Internal("not loaded");
  if (action == "show") {
    if (!fs::is_directory(dir, ec)) {
      err << "safegatectl keys show: data directory " << dir.string()
          << " does not exist or is not a directory\n";
      return kExitUsage;
    }
    keys = transfer::GatewayKeys::Load(dir.string());
    if (!keys.ok() && keys.status().code() == ErrorCode::kNotFound) {
      err << "safegatectl keys show: no transfer keys in " << dir.string()
          << "; safegated creates them at first start, or run `safegatectl keys init "
             "--data-dir "
          << dir.string() << "`\n";
      // One file without the other is a half-made key set (init completes it): say which.
      for (const fs::path& f : {signing, sealing}) {
        if (fs::exists(fs::symlink_status(f, ec))) err << "  (" << f.string() << " exists)\n";
      }
      return kExitFailed;
    }
  } else {
    if (!fs::exists(dir, ec)) {
      // As the store makes it: private to the gateway's user.
      if (!fs::create_directories(dir, ec) || ec) {
        err << "safegatectl keys init: cannot create " << dir.string() << ": " << ec.message()
            << "\n";
        return kExitUsage;
      }
      fs::permissions(dir, fs::perms::owner_all, fs::perm_options::replace, ec);
      err << "safegatectl keys init: created the data directory " << dir.string()
          << " (mode 0700)\n";
    } else if (!fs::is_directory(dir, ec)) {
      err << "safegatectl keys init: " << dir.string() << " is not a directory\n";
      return kExitUsage;
    }
    const bool had_signing = fs::exists(fs::symlink_status(signing, ec));
    const bool had_sealing = fs::exists(fs::symlink_status(sealing, ec));
    keys = transfer::GatewayKeys::LoadOrCreate(dir.string());
    if (keys.ok()) {
      std::string made;
      if (!had_signing) made = signing.string();
      if (!had_sealing) made += (made.empty() ? "" : " and ") + sealing.string();
      if (made.empty()) {
        err << "safegatectl keys init: the transfer keys in " << dir.string()
            << " exist already; nothing was created\n";
      } else {
        err << "safegatectl keys init: created " << made << " (mode 0600)\n";
      }
    }
  }
  if (!keys.ok()) {
    err << "safegatectl keys " << action << ": " << keys.status().detail() << "\n";
    return kExitFailed;
  }
  out << (area.empty() ? KeysWithoutAreaText(**keys) : transfer::KeysShowText(area, **keys));
  return kExitOk;
}

}  // namespace safegate::ctl
