#include "daemon/audit/proof_bundle.h"

#include <algorithm>
#include <array>

#include "daemon/audit/encoding.h"

namespace safegate::audit {
namespace {

using json = nlohmann::json;

json PathToJson(std::span<const Hash> path) {
  json out = json::array();
  for (const Hash& h : path) out.push_back(HashHex(h));
  return out;
}

// Reads the shape of a JSON object field by field, collecting every problem.
class FieldReader {
 public:
  FieldReader(const json& j, std::string where, std::vector<Problem>* problems)
      : j_(j), where_(std::move(where)), problems_(problems) {}

  bool IsObject() {
    if (j_.is_object()) return true;
    problems_->push_back({where_.empty() ? "/" : where_, "must be a JSON object"});
    return false;
  }
  void RejectUnknown(std::span<const std::string_view> known) {
    for (const auto& [key, value] : j_.items()) {
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        problems_->push_back({At(key), "unknown field"});
      }
    }
  }
  const json* Need(std::string_view key) {
    auto it = j_.find(key);
    if (it == j_.end()) {
      problems_->push_back({At(key), "missing"});
      return nullptr;
    }
    return &*it;
  }
  std::optional<uint64_t> Unsigned(std::string_view key) {
    const json* v = Need(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_unsigned()) {
      problems_->push_back({At(key), "must be a non-negative integer"});
      return std::nullopt;
    }
    return v->get<uint64_t>();
  }
  std::optional<Hash> HashHexField(const json& v, const std::string& where) {
    auto h = v.is_string() ? FixedFromHex<kHashSize>(v.get<std::string>()) : std::nullopt;
    if (!h) problems_->push_back({where, "must be 64 lower-case hex characters"});
    return h;
  }
  std::optional<std::vector<Hash>> Path(std::string_view key) {
    const json* v = Need(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_array()) {
      problems_->push_back({At(key), "must be an array of hex hashes"});
      return std::nullopt;
    }
    std::vector<Hash> path;
    bool ok = true;
    for (size_t i = 0; i < v->size(); ++i) {
      auto h = HashHexField((*v)[i], At(key) + "/" + std::to_string(i));
      if (h) {
        path.push_back(*h);
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return path;
  }
  std::string At(std::string_view key) const { return where_ + "/" + std::string(key); }

 private:
  const json& j_;
  std::string where_;
  std::vector<Problem>* problems_;
};

Status Problems(std::string_view what, std::vector<Problem> problems) {
  std::string detail =
      std::string(what) + ": " + problems.front().where + " " + problems.front().what;
  if (problems.size() > 1) {
    detail += " (and " + std::to_string(problems.size() - 1) + " more)";
  }
  return Status::Invalid(std::move(detail), std::move(problems));
}

}  // namespace

json InclusionProofToJson(uint64_t leaf_index, uint64_t tree_size, std::string_view entry,
                          std::span<const Hash> path) {
  return json{{"leaf_index", leaf_index},
              {"tree_size", tree_size},
              {"entry", ToBase64(entry)},
              {"leaf_hash", HashHex(LeafHash(entry))},
              {"path", PathToJson(path)}};
}

json ConsistencyProofToJson(uint64_t first, uint64_t second, std::span<const Hash> path) {
  return json{{"first", first}, {"second", second}, {"path", PathToJson(path)}};
}

Result<ConsistencyProofData> ConsistencyProofFromJson(const json& j) {
  std::vector<Problem> problems;
  FieldReader r(j, "", &problems);
  ConsistencyProofData out;
  if (r.IsObject()) {
    static constexpr std::array<std::string_view, 3> kKnown = {"first", "second", "path"};
    r.RejectUnknown(kKnown);
    if (auto v = r.Unsigned("first")) out.first = *v;
    if (auto v = r.Unsigned("second")) out.second = *v;
    if (auto v = r.Path("path")) out.path = std::move(*v);
  }
  if (!problems.empty()) return Problems("the consistency proof is malformed", problems);
  return out;
}

json BundleToJson(const ProofBundle& b) {
  json j = json::object();
  j["format"] = kBundleFormat;
  j["entry"] = ToBase64(b.entry);
  j["leaf_index"] = b.leaf_index;
  j["tree_size"] = b.tree_size;
  j["leaf_hash"] = HashHex(b.leaf_hash ? *b.leaf_hash : LeafHash(b.entry));
  j["path"] = PathToJson(b.path);
  j["tree_head"] = TreeHeadToJson(b.tree_head, b.public_key);
  return j;
}

Result<ProofBundle> BundleFromJson(const json& j) {
  std::vector<Problem> problems;
  FieldReader r(j, "", &problems);
  ProofBundle out;
  if (r.IsObject()) {
    static constexpr std::array<std::string_view, 7> kKnown = {
        "format", "entry", "leaf_index", "tree_size", "leaf_hash", "path", "tree_head"};
    r.RejectUnknown(kKnown);
    if (const json* v = r.Need("format")) {
      if (!v->is_string() || v->get<std::string>() != kBundleFormat) {
        problems.push_back({"/format", "must be \"" + std::string(kBundleFormat) + "\""});
      }
    }
    if (const json* v = r.Need("entry")) {
      auto bytes = v->is_string() ? FromBase64(v->get<std::string>()) : std::nullopt;
      if (bytes) {
        out.entry = std::move(*bytes);
      } else {
        problems.push_back({"/entry", "must be standard base64 with padding"});
      }
    }
    if (auto v = r.Unsigned("leaf_index")) out.leaf_index = *v;
    if (auto v = r.Unsigned("tree_size")) out.tree_size = *v;
    if (auto it = j.find("leaf_hash"); it != j.end()) {
      out.leaf_hash = r.HashHexField(*it, "/leaf_hash");
    }
    if (auto v = r.Path("path")) out.path = std::move(*v);
    if (const json* v = r.Need("tree_head")) {
      auto head = TreeHeadFromJson(*v, "/tree_head");
      if (head.ok()) {
        out.tree_head = head->head;
        out.public_key = head->public_key;
      } else {
        for (const Problem& p : head.status().problems()) problems.push_back(p);
        if (head.status().problems().empty()) {
          problems.push_back({"/tree_head", head.status().detail()});
        }
      }
    }
  }
  if (!problems.empty()) return Problems("the proof bundle is malformed", problems);
  return out;
}

Result<ProofBundle> MakeBundle(const NodeStore& store, std::string entry, uint64_t leaf_index,
                               const SignedTreeHead& head, const PublicKey& key) {
  if (leaf_index >= head.tree_size) {
    return Status::BadRequest("leaf index " + std::to_string(leaf_index) +
                              " is not in the signed tree of " + std::to_string(head.tree_size) +
                              " leaves");
  }
  auto stored = store.Get(0, leaf_index);
  if (!stored.ok()) return stored.status();
  const Hash leaf = LeafHash(entry);
  if (leaf != *stored) {
    return Status::Internal("the entry bytes given for leaf " + std::to_string(leaf_index) +
                            " hash to " + HashHex(leaf) + ", but the tree holds " +
                            HashHex(*stored));
  }
  auto path = InclusionProof(store, leaf_index, head.tree_size);
  if (!path.ok()) return path.status();
  ProofBundle b;
  b.entry = std::move(entry);
  b.leaf_index = leaf_index;
  b.tree_size = head.tree_size;
  b.leaf_hash = leaf;
  b.path = std::move(*path);
  b.tree_head = head;
  b.public_key = key;
  // Never hand out a bundle that does not verify: that would be a store or signing fault.
  if (Status s = VerifyBundle(b, &key); !s.ok()) {
    return Status::Internal("the proof bundle for leaf " + std::to_string(leaf_index) +
                            " does not verify: " + s.detail());
  }
  return b;
}

Status VerifyBundle(const ProofBundle& b, const PublicKey* trusted) {
  std::vector<Problem> problems;
  if (trusted != nullptr && *trusted != b.public_key) {
    problems.push_back(
        {"/tree_head/public_key", "is " + ToBase64(std::span<const uint8_t>(b.public_key)) +
                                      ", not the trusted gateway key " +
                                      ToBase64(std::span<const uint8_t>(*trusted))});
  }
  if (Status s = VerifyTreeHead(b.tree_head, b.public_key); !s.ok()) {
    problems.push_back({"/tree_head/signature", "does not verify under /tree_head/public_key"});
  }
  if (b.tree_size != b.tree_head.tree_size) {
    problems.push_back({"/tree_size", "is " + std::to_string(b.tree_size) +
                                          " but the signed head is for tree size " +
                                          std::to_string(b.tree_head.tree_size)});
  }
  const Hash leaf = LeafHash(b.entry);
  if (b.leaf_hash && *b.leaf_hash != leaf) {
    problems.push_back({"/leaf_hash", "is " + HashHex(*b.leaf_hash) +
                                          " but SHA-256(0x00 || entry) is " + HashHex(leaf)});
  }
  // The path is checked against the signed head: its size and root are what the signature
  // vouches for.
  if (Status s =
          VerifyInclusion(leaf, b.leaf_index, b.tree_head.tree_size, b.path, b.tree_head.root_hash);
      !s.ok()) {
    const std::string where = b.leaf_index >= b.tree_head.tree_size ? "/leaf_index" : "/path";
    problems.push_back({where, s.detail()});
  }
  if (!problems.empty()) return Problems("the proof bundle does not verify", problems);
  return Status::Ok();
}

Status VerifyBundleJson(std::string_view text, const PublicKey* trusted) {
  const json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Status::Invalid("the proof bundle is not valid JSON", {{"/", "not JSON"}});
  }
  auto bundle = BundleFromJson(j);
  if (!bundle.ok()) return bundle.status();
  return VerifyBundle(*bundle, trusted);
}

}  // namespace safegate::audit
