#include "adapters/common/json_input.h"

#include <cstdint>
#include <string>
#include <vector>

#include "adapters/common/text.h"

namespace safegate::adapters {
namespace {

using nlohmann::json;

// Builds the DOM through nlohmann's own SAX DOM builder (no exceptions), and on the side
// tracks the JSON pointer of the current position, the depth and the keys seen per object.
class StrictSax : public nlohmann::json_sax<json> {
 public:
  StrictSax(json& out, std::string_view input, ProblemList& problems)
      : dom_(out, false), input_(input), problems_(problems) {}

  bool failed() const { return failed_; }

  bool null() override { return Value() && dom_.null(); }
  bool boolean(bool v) override { return Value() && dom_.boolean(v); }
  bool number_integer(number_integer_t v) override { return Value() && dom_.number_integer(v); }
  bool number_unsigned(number_unsigned_t v) override { return Value() && dom_.number_unsigned(v); }
  bool number_float(number_float_t v, const string_t& s) override {
    return Value() && dom_.number_float(v, s);
  }
  bool string(string_t& v) override { return Value() && dom_.string(v); }
  bool binary(binary_t& v) override { return Value() && dom_.binary(v); }

  bool start_object(std::size_t n) override {
    if (!Value() || !Enter()) return false;
    frames_.push_back({false, 0, keys_used_, kNoKey});
    return dom_.start_object(n);
  }
  bool key(string_t& k) override {
    Frame& f = frames_.back();
    for (size_t i = f.keys_begin; i < keys_used_; ++i) {
      if (keys_[i] == k) {
        return Fail(JsonPointer(Pointer(frames_.size() - 1), k),
                    "duplicate member \"" + Excerpt(k) + "\"");
      }
    }
    // The key strings are reused from object to object: no allocation once they are warm.
    if (keys_used_ == keys_.size()) keys_.emplace_back();
    keys_[keys_used_].assign(k);
    f.key = keys_used_++;
    return dom_.key(k);
  }
  bool end_object() override {
    keys_used_ = frames_.back().keys_begin;
    frames_.pop_back();
    return dom_.end_object();
  }
  bool start_array(std::size_t n) override {
    if (!Value() || !Enter()) return false;
    frames_.push_back({true, 0, keys_used_, kNoKey});
    return dom_.start_array(n);
  }
  bool end_array() override {
    frames_.pop_back();
    return dom_.end_array();
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    // ex.what() reads "[json.exception.parse_error.101] parse error at line 1, column 5: ...".
    std::string what = ex.what();
    const size_t colon = what.find(": ");
    if (colon != std::string::npos) what = what.substr(colon + 2);
    const size_t at = position > 0 ? position - 1 : 0;
    size_t line_start = at;
    while (line_start > 0 && input_[line_start - 1] != '\n') --line_start;
    Fail("line " + std::to_string(LineAt(input_, at)) + ", column " +
             std::to_string(at - line_start + 1),
         "not valid JSON: " + what);
    return false;
  }

 private:
  static constexpr size_t kNoKey = SIZE_MAX;
  struct Frame {
    bool array;
    size_t index;
    size_t keys_begin;  // this object's keys are keys_[keys_begin, keys_used_)
    size_t key;         // index in keys_ of the current member's key
  };

  // Called before every value: advances the index of the array it is in.
  bool Value() {
    if (!frames_.empty() && frames_.back().array) ++frames_.back().index;
    return true;
  }
  bool Enter() {
    if (frames_.size() >= kMaxJsonDepth) {
      return Fail(Pointer(), "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    return true;
  }
  // The pointer through the first `levels` open containers (all of them by default).
  std::string Pointer(size_t levels = SIZE_MAX) const {
    std::string p;
    for (size_t i = 0; i < frames_.size() && i < levels; ++i) {
      const Frame& f = frames_[i];
      const std::string_view key = f.key == kNoKey ? std::string_view() : keys_[f.key];
      p = f.array ? JsonPointer(p, f.index - 1) : JsonPointer(p, key);
    }
    return p;
  }
  bool Fail(std::string where, std::string what) {
    if (!failed_) problems_.Add(std::move(where), std::move(what));
    failed_ = true;
    return false;
  }

  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::string_view input_;
  ProblemList& problems_;
  std::vector<Frame> frames_;
  std::vector<std::string> keys_;  // keys of the open objects, innermost last
  size_t keys_used_ = 0;
  bool failed_ = false;
};

}  // namespace

std::optional<nlohmann::json> ParseJsonStrict(std::string_view input, ProblemList& problems) {
  json out;
  StrictSax sax(out, input, problems);
  const bool ok = json::sax_parse(input.begin(), input.end(), &sax, json::input_format_t::json,
                                  /*strict=*/true, /*ignore_comments=*/false);
  if (!ok || sax.failed()) {
    if (!sax.failed()) problems.Add("", "not valid JSON");
    return std::nullopt;
  }
  return out;
}

std::string JsonPointer(std::string_view base, std::string_view token) {
  std::string out(base);
  out.push_back('/');
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string JsonPointer(std::string_view base, size_t index) {
  return std::string(base) + "/" + std::to_string(index);
}

}  // namespace safegate::adapters
