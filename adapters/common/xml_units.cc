#include "adapters/common/xml_units.h"

#include <algorithm>
#include <climits>
#include <memory>
#include <utility>

#include <expat.h>

#include "adapters/common/text.h"

namespace safegate::adapters {

const XmlNode* XmlNode::Child(std::string_view child_name) const {
  for (const XmlNode& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

XmlNode* XmlNode::Child(std::string_view child_name) {
  return const_cast<XmlNode*>(std::as_const(*this).Child(child_name));
}

std::vector<const XmlNode*> XmlNode::ChildrenNamed(std::string_view child_name) const {
  std::vector<const XmlNode*> out;
  for (const XmlNode& c : children) {
    if (c.name == child_name) out.push_back(&c);
  }
  return out;
}

const std::string* XmlNode::Attribute(std::string_view attribute_name) const {
  for (const auto& [k, v] : attributes) {
    if (k == attribute_name) return &v;
  }
  return nullptr;
}

std::string* XmlNode::Attribute(std::string_view attribute_name) {
  return const_cast<std::string*>(std::as_const(*this).Attribute(attribute_name));
}

// Built by appending: GCC 12 at -O3 reports a false -Wrestrict on the equivalent chain of
// operator+.
std::string XmlChildPath(std::string_view parent, std::string_view name, int index) {
  std::string out;
  out.reserve(parent.size() + name.size() + 8);
  out.append(parent).append("/").append(name);
  if (index > 0) out.append("[").append(std::to_string(index)).append("]");
  return out;
}

namespace {

// The same, written over `*out` (whose memory is reused).
void SetChildPath(std::string* out, std::string_view parent, std::string_view name, int index) {
  out->assign(parent).append("/").append(name);
  if (index > 0) out->append("[").append(std::to_string(index)).append("]");
}

}  // namespace

namespace {

// Exports are shallow; anything deeper is refused before it can exhaust the stack of the
// recursive walks (path finishing, destruction) over a unit.
constexpr size_t kMaxDepth = 64;
constexpr size_t kChunk = size_t{1} << 20;
constexpr size_t kChildrenReserve = 16;

enum class Role { kContainer, kUnitRoot, kInUnit, kSkipped };

// True when `s` is only the blanks Trim() removes. Here rather than Trim(s).empty(): expat
// hands over every line end and indentation between elements as text of its own.
bool IsBlank(std::string_view s) {
  for (char c : s) {
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') return false;
  }
  return true;
}

struct Frame {
  std::string_view layout_path;  // names only: one of the layout's paths (or the root's)
  std::string path;         // with indices
  Role role = Role::kContainer;
  std::vector<std::pair<std::string, int>> child_counts;
  std::string stray;  // non-blank text seen directly in a container, not yet reported

  int NextIndex(std::string_view name) {
    for (auto& [n, c] : child_counts) {
      if (n == name) return ++c;
    }
    child_counts.emplace_back(name, 1);
    return 1;
  }
};

// Per-name counts among one element's children, reused from element to element.
struct NameCount {
  std::string_view name;
  int total = 0;
  int seen = 0;
};

// Gives every element below `node` its path: the name, with "[k]" when the name repeats among
// its siblings. Trims the text collected while streaming.
void FinishPaths(XmlNode& node, std::vector<NameCount>& counts, bool paths) {
  const std::string_view trimmed = Trim(node.text);
  if (trimmed.size() != node.text.size()) {
    const size_t start = static_cast<size_t>(trimmed.data() - node.text.data());
    const size_t length = trimmed.size();
    node.text.erase(0, start);
    node.text.resize(length);
  }
  if (node.children.empty()) return;
  counts.clear();
  auto count_of = [&counts](std::string_view name) -> NameCount& {
    for (NameCount& c : counts) {
      if (c.name == name) return c;
    }
    return counts.emplace_back(NameCount{name, 0, 0});
  };
  for (const XmlNode& c : node.children) ++count_of(c.name).total;
  for (XmlNode& c : node.children) {
    NameCount& n = count_of(c.name);
    ++n.seen;
    c.index = n.total > 1 ? n.seen : 0;
    if (paths) c.path = XmlChildPath(node.path, c.name, c.index);
  }
  // `counts` is done with for this element before it is reused below.
  for (XmlNode& c : node.children) FinishPaths(c, counts, paths);
}

class Reader {
 public:
  Reader(const XmlLayout& layout, XmlUnitHandler& handler, ProblemList& problems, XML_Parser p)
      : layout_(layout), handler_(handler), problems_(problems), parser_(p) {
    const std::string& first =
        !layout.units.empty() ? layout.units.front() : layout.containers.front();
    const size_t slash = first.find('/', 1);
    root_ = first.substr(1, slash == std::string::npos ? std::string::npos : slash - 1);
    root_layout_ = "/" + root_;
  }

  bool stopped() const { return stopped_; }
  bool saw_root() const { return saw_root_; }

  void Fail(std::string where, std::string what) {
    problems_.Add(std::move(where), std::move(what));
    stopped_ = true;
    XML_StopParser(parser_, XML_FALSE);
  }

  std::string Position() const {
    return "line " + std::to_string(XML_GetCurrentLineNumber(parser_)) + ", column " +
           std::to_string(XML_GetCurrentColumnNumber(parser_) + 1);
  }

  void Start(const XML_Char* name_c, const XML_Char** attrs) {
    if (stopped_) return;
    if (skip_depth_ > 0) {
      ++skip_depth_;
      return;
    }
    const std::string_view name(name_c);
    if (stack_.size() >= kMaxDepth) {
      Fail(Position(), "elements are nested deeper than " + std::to_string(kMaxDepth));
      return;
    }
    if (stack_.empty()) {
      saw_root_ = true;
      if (name != root_) {
        const std::string n(name);
        Fail("/" + n, "the root element is <" + n + ">, expected <" + root_ + ">");
        return;
      }
      Frame f;
      f.layout_path = root_layout_;
      f.path = root_layout_;
      f.role = IsUnit(root_layout_) ? Role::kUnitRoot : Role::kContainer;
      if (f.role == Role::kUnitRoot) {
        unit_.path.assign(root_layout_);
        BeginUnit(name, attrs);
      }
      stack_.push_back(std::move(f));
      return;
    }
    Frame& parent = stack_.back();
    FlushStray(parent);
    if (parent.role == Role::kUnitRoot || parent.role == Role::kInUnit) {
      // Inside a unit the tree itself is the record: the frame only marks the level, and
      // names, indices and paths are settled when the unit is complete (FinishPaths).
      XmlNode* up = nodes_.back();
      // One allocation for the unit's own children rather than doubling up to their number.
      // Only for the unit (one at a time): reserving in every element would let a document of
      // small nested elements claim far more memory than its size.
      if (up == &unit_ && up->children.empty()) up->children.reserve(kChildrenReserve);
      up->children.emplace_back();
      XmlNode& n = up->children.back();
      n.name = name;
      SetAttributes(n, attrs);
      nodes_.push_back(&n);
      stack_.emplace_back().role = Role::kInUnit;
      return;
    }
    const int index = parent.NextIndex(name);
    Frame f;
    if (const std::string* unit = FindChild(layout_.units, parent.layout_path, name)) {
      f.layout_path = *unit;
      f.role = Role::kUnitRoot;
      // The unit's path is written straight into the unit (the frame needs none).
      SetChildPath(&unit_.path, parent.path, name, index);
      BeginUnit(name, attrs);
    } else if (const std::string* container =
                   FindChild(layout_.containers, parent.layout_path, name)) {
      f.layout_path = *container;
      f.role = Role::kContainer;
      f.path = XmlChildPath(parent.path, name, index > 1 ? index : 0);
    } else {
      // Only here is the line asked for: expat works it out by scanning the input again
      // from where it was last asked, so asking at every element scanned it all twice.
      handler_.OnUnexpected(XmlChildPath(parent.path, name, index > 1 ? index : 0),
                            static_cast<int>(XML_GetCurrentLineNumber(parser_)));
      skip_depth_ = 1;
      return;
    }
    stack_.push_back(std::move(f));
  }

  void End() {
    if (stopped_) return;
    if (skip_depth_ > 0) {
      --skip_depth_;
      return;
    }
    Frame& f = stack_.back();
    if (f.role == Role::kInUnit) {
      nodes_.pop_back();
    } else if (f.role == Role::kUnitRoot) {
      FinishPaths(unit_, name_counts_, layout_.paths_inside_units);
      handler_.OnUnit(f.layout_path, unit_);
      // Emptied, not freed: the next unit reuses its strings' and child list's memory.
      unit_.attributes.clear();
      unit_.text.clear();
      unit_.children.clear();
      nodes_.clear();
    } else {
      FlushStray(f);
    }
    stack_.pop_back();
  }

  void Text(const XML_Char* s, int len) {
    if (stopped_ || skip_depth_ > 0 || stack_.empty() || len <= 0) return;
    Frame& f = stack_.back();
    const std::string_view text(s, static_cast<size_t>(len));
    if (f.role == Role::kContainer) {
      if (!IsBlank(text) || !f.stray.empty()) f.stray.append(text);
    } else {
      // Leading blanks (the indentation between a unit's elements) would only be trimmed
      // off: not keeping them saves building a string for every element that holds others.
      std::string& kept = nodes_.back()->text;
      if (kept.empty() && IsBlank(text)) return;
      kept.append(text);
    }
  }

 private:
  bool IsUnit(const std::string& p) const {
    return std::find(layout_.units.begin(), layout_.units.end(), p) != layout_.units.end();
  }
  // The path among `paths` that is parent + "/" + name, or nullptr; without building it.
  static const std::string* FindChild(const std::vector<std::string>& paths,
                                      std::string_view parent, std::string_view name) {
    for (const std::string& p : paths) {
      if (p.size() == parent.size() + 1 + name.size() && p.starts_with(parent) &&
          p[parent.size()] == '/' && p.ends_with(name)) {
        return &p;
      }
    }
    return nullptr;
  }

  static void SetAttributes(XmlNode& n, const XML_Char** attrs) {
    if (attrs[0] == nullptr) return;
    size_t count = 0;
    while (attrs[2 * count] != nullptr) ++count;
    n.attributes.reserve(count);  // one allocation, not one per doubling
    for (size_t i = 0; attrs[i] != nullptr && attrs[i + 1] != nullptr; i += 2) {
      n.attributes.emplace_back(attrs[i], std::string(Trim(attrs[i + 1])));
    }
  }

  // REQUIRES: unit_.path is set.
  void BeginUnit(std::string_view name, const XML_Char** attrs) {
    unit_.name.assign(name);
    unit_.index = 0;
    SetAttributes(unit_, attrs);
    nodes_.assign(1, &unit_);
  }

  void FlushStray(Frame& f) {
    if (f.stray.empty()) return;
    const std::string_view t = Trim(f.stray);
    if (!t.empty()) handler_.OnStrayText(f.path, t);
    f.stray.clear();
  }

  const XmlLayout& layout_;
  XmlUnitHandler& handler_;
  ProblemList& problems_;
  XML_Parser parser_;
  std::string root_;
  std::string root_layout_;  // "/" + root_
  std::vector<Frame> stack_;
  XmlNode unit_;                 // the unit being read (one at a time), reused from unit to unit
  std::vector<XmlNode*> nodes_;  // open elements of the current unit, root first
  std::vector<NameCount> name_counts_;  // scratch for FinishPaths
  int skip_depth_ = 0;
  bool stopped_ = false;
  bool saw_root_ = false;
};

Reader* Self(void* user_data) { return static_cast<Reader*>(user_data); }

void XMLCALL OnStart(void* ud, const XML_Char* name, const XML_Char** attrs) {
  Self(ud)->Start(name, attrs);
}
void XMLCALL OnEnd(void* ud, const XML_Char*) { Self(ud)->End(); }
void XMLCALL OnText(void* ud, const XML_Char* s, int len) { Self(ud)->Text(s, len); }

void XMLCALL OnDoctype(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, int) {
  Reader* r = Self(ud);
  r->Fail(r->Position(), "a document type declaration (DTD) is not allowed");
}
void XMLCALL OnEntityDecl(void* ud, const XML_Char*, int, const XML_Char*, int, const XML_Char*,
                          const XML_Char*, const XML_Char*, const XML_Char*) {
  Reader* r = Self(ud);
  r->Fail(r->Position(), "entity declarations are not allowed");
}
int XMLCALL OnExternalEntity(XML_Parser, const XML_Char*, const XML_Char*, const XML_Char*,
                             const XML_Char*) {
  return XML_STATUS_ERROR;  // never fetch or read anything from outside the document
}

struct ParserDeleter {
  void operator()(XML_Parser p) const { XML_ParserFree(p); }
};

}  // namespace

bool ReadXmlUnits(std::string_view input, const XmlLayout& layout, XmlUnitHandler& handler,
                  ProblemList& problems) {
  std::unique_ptr<std::remove_pointer_t<XML_Parser>, ParserDeleter> parser(
      XML_ParserCreate(nullptr));
  if (!parser) {
    problems.Add("", "out of memory creating the XML parser");
    return false;
  }
  XML_Parser p = parser.get();
  Reader reader(layout, handler, problems, p);
  XML_SetUserData(p, &reader);
  XML_SetElementHandler(p, OnStart, OnEnd);
  XML_SetCharacterDataHandler(p, OnText);
  XML_SetStartDoctypeDeclHandler(p, OnDoctype);
  XML_SetEntityDeclHandler(p, OnEntityDecl);
  XML_SetExternalEntityRefHandler(p, OnExternalEntity);
  XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);

  size_t pos = 0;
  do {
    const size_t n = std::min(kChunk, input.size() - pos);
    const bool last = pos + n == input.size();
    if (XML_Parse(p, input.data() + pos, static_cast<int>(n), last ? XML_TRUE : XML_FALSE) !=
        XML_STATUS_OK) {
      if (!reader.stopped()) {
        problems.Add("line " + std::to_string(XML_GetCurrentLineNumber(p)) + ", column " +
                         std::to_string(XML_GetCurrentColumnNumber(p) + 1),
                     std::string("not well-formed XML: ") + XML_ErrorString(XML_GetErrorCode(p)));
      }
      return false;
    }
    pos += n;
  } while (pos < input.size());
  return !reader.stopped() && reader.saw_root();
}

}  // namespace safegate::adapters
