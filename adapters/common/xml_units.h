// Streaming XML reading for exports: the document goes through expat once, and only one
// "unit" at a time (a Child of a CIN file, a Nominal of a Niche export) is kept as a small
// tree and handed to the adapter. The whole file is never held as a DOM.
//
// Hardening: a document type declaration (DTD), and so any entity declaration or external
// entity, is refused: parsing stops with a problem. Parameter entities are never parsed.
// Well-formedness errors stop parsing with "line L, column C".
//
// Positions are element paths in XPath form. Units always carry their index among siblings of
// the same name ("/Message/Children/Child[3]"); inside a unit, an element carries an index only
// when its name repeats among its siblings ("/.../Reviews/CPPreviewDate[2]"); an attribute is
// "<element path>/@name".
//
// Thread-safety: none; one reader per Parse() call.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/common/problems.h"

namespace safegate::adapters {

struct XmlNode {
  std::string name;
  // The element's path. Inside a unit read with XmlLayout::paths_inside_units false, only the
  // unit itself has one: the adapter spells out the others (from `index`) when it needs them.
  std::string path;
  int index = 0;  // k of "[k]" in its path: 0 when no sibling has the same name
  std::vector<std::pair<std::string, std::string>> attributes;
  std::string text;  // character data directly inside this element, trimmed
  std::vector<XmlNode> children;

  const XmlNode* Child(std::string_view child_name) const;  // first with that name, or nullptr
  XmlNode* Child(std::string_view child_name);
  std::vector<const XmlNode*> ChildrenNamed(std::string_view child_name) const;
  // Calls f(child) for each child with that name, in order, without building a list.
  template <typename F>
  void ForEachChild(std::string_view child_name, F&& f) const {
    for (const XmlNode& c : children) {
      if (c.name == child_name) f(c);
    }
  }
  const std::string* Attribute(std::string_view attribute_name) const;  // or nullptr
  std::string* Attribute(std::string_view attribute_name);
  std::string AttributePath(std::string_view attribute_name) const {
    return path + "/@" + std::string(attribute_name);
  }
};

// Where units are in the document: `containers` are the element paths (names only, e.g.
// "/Message", "/Message/Children") that hold units; `units` are the paths of the unit
// elements ("/Message/Header", "/Message/Children/Child"). The first component of every path
// is the required root element.
struct XmlLayout {
  std::vector<std::string> containers;
  std::vector<std::string> units;
  // False: elements inside a unit get no `path` (a string per element that nearly always goes
  // unused), only their `index`.
  bool paths_inside_units = true;
};

// parent + "/" + name, with "[index]" when index > 0.
std::string XmlChildPath(std::string_view parent, std::string_view name, int index);

class XmlUnitHandler {
 public:
  virtual ~XmlUnitHandler() = default;
  // A complete unit, in document order. `unit_path` is its layout path (without indices).
  // The unit is the handler's to take apart (strings may be moved out): the reader drops it
  // afterwards.
  virtual void OnUnit(std::string_view unit_path, XmlNode& unit) = 0;
  // An element outside the layout (neither container, unit, nor inside a unit). Its content
  // is skipped. `path` carries indices.
  virtual void OnUnexpected(const std::string& path, int line) = 0;
  // Non-blank text directly inside a container.
  virtual void OnStrayText(const std::string& path, std::string_view text) = 0;
};

// Streams `input` through the layout. Returns false (with problems added) if the document is
// not well-formed, carries a DTD, has the wrong root, or is empty; units already handed over
// stay handed over, so callers treat false as "reject".
bool ReadXmlUnits(std::string_view input, const XmlLayout& layout, XmlUnitHandler& handler,
                  ProblemList& problems);

}  // namespace safegate::adapters
