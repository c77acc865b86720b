// The table of every ingest format safegate understands, and the renderers for recipients.
//
// The table is one explicit array in registry.cc (no self-registration at static
// initialisation, which static libraries silently drop). Adding a format is one folder, one
// row there, its tests, its fuzz target and its page in docs/adapters/.
//
// Thread-safety: the table is immutable; the adapters it points to are immutable too.
#pragma once

#include <span>
#include <string_view>

#include "adapters/adapter.h"

namespace safegate::adapters {

// The adapter registered under `name` ("niche-xml", "fhir-flag", ...), or nullptr. The pointer
// lives as long as the program.
const Adapter* FindAdapter(std::string_view name);

// Every registered adapter, in a fixed order.
std::span<const Adapter* const> AllAdapters();

}  // namespace safegate::adapters
