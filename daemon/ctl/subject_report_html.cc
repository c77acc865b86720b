#include "daemon/ctl/subject_report_html.h"

#include <cstdint>
#include <string>

namespace safegate::ctl {
namespace {

using nlohmann::json;

constexpr const char* kNotRecorded = "not recorded";

// The page's look: readable on screen, plain on paper (no backgrounds needed, rows kept whole).
constexpr const char* kStyle = R"(
body { font-family: Georgia, "Times New Roman", serif; color: #111; margin: 2em auto;
       max-width: 60em; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; border-bottom: 1px solid #888; margin-top: 1.8em; }
p.lead { margin-top: 0; color: #333; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #999; padding: 0.3em 0.45em; text-align: left; vertical-align: top; }
th { background: #eee; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dl.facts dt { font-weight: bold; }
dl.facts dd { margin: 0; }
ul.reasons { margin: 0; padding-left: 1.1em; }
code, .mono { font-family: "DejaVu Sans Mono", Menlo, monospace; font-size: 0.85em;
              overflow-wrap: anywhere; }
.erased { color: #555; font-style: italic; }
.none { color: #555; font-style: italic; }
.decision-permit { font-weight: bold; }
.decision-redact { font-weight: bold; }
.decision-deny { font-weight: bold; }
footer { margin-top: 2em; font-size: 0.8em; color: #444; }
@media print {
  body { margin: 0; max-width: none; font-size: 10pt; }
  th { background: none; }
  tr, dl.facts { page-break-inside: avoid; }
  h2 { page-break-after: avoid; }
}
)";

std::string E(std::string_view s) { return HtmlEscape(s); }

// A member as text: strings as they are, numbers and booleans written out, else "".
std::string Str(const json& obj, const char* key) {
  if (!obj.is_object()) return "";
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  if (it->is_boolean()) return it->get<bool>() ? "yes" : "no";
  return "";
}

const json& Member(const json& obj, const char* key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

// Escaped text, or "not recorded" in grey.
std::string Cell(const std::string& text) {
  if (text.empty()) return std::string("<span class=\"none\">") + kNotRecorded + "</span>";
  return E(text);
}

// An agency {"id", "name"}: "Name (id)".
std::string Agency(const json& agency) {
  const std::string id = Str(agency, "id");
  const std::string name = Str(agency, "name");
  if (id.empty()) return Cell("");
  if (name.empty()) return "<span class=\"mono\">" + E(id) + "</span>";
  return E(name) + " <span class=\"mono\">(" + E(id) + ")</span>";
}

std::string Record(const json& item) {
  const std::string kind = Str(item, "record_kind");
  const std::string id = Str(item, "record_id");
  if (id.empty()) return Cell(kind);
  return (kind.empty() ? std::string("record") : E(kind)) + "<br><span class=\"mono\">" + E(id) +
         "</span>";
}

std::string Reasons(const json& reasons) {
  if (!reasons.is_array() || reasons.empty()) return Cell("");
  std::string out = "<ul class=\"reasons\">";
  for (const json& r : reasons) {
    if (r.is_string()) out += "<li>" + E(r.get<std::string>()) + "</li>";
  }
  return out + "</ul>";
}

std::string Decision(const std::string& decision) {
  std::string words = decision == "permit"   ? "shared"
                      : decision == "redact" ? "shared with parts withheld"
                      : decision == "deny"   ? "not shared"
                                             : decision;
  return "<span class=\"decision-" + E(decision) + "\">" + Cell(words) + "</span>";
}

std::string Override(const json& item) {
  const json& o = Member(item, "override");
  if (!o.is_object()) return "";
  std::string out = "<br><strong>Safeguarding override used</strong>";
  const json& recorded = Member(o, "recorded");
  for (const auto& [key, label] : {std::pair<const char*, const char*>{"basis", "basis"},
                                   {"reason", "reason"},
                                   {"authorised_by", "authorised by"}}) {
    const std::string v = Str(recorded, key);
    if (!v.empty()) out += "<br>" + std::string(label) + ": " + E(v);
  }
  return out;
}

std::string ErasedRow(const json& item, int columns) {
  return "<tr><td>" + Cell(Str(item, "at")) + "</td><td colspan=\"" +
         std::to_string(columns - 1) + "\" class=\"erased\">entry " + E(Str(item, "seq")) +
         " (" + E(Str(item, "action")) +
         "): its details were erased at the end of retention</td></tr>\n";
}

std::string Empty(int columns, const char* what) {
  return "<tr><td colspan=\"" + std::to_string(columns) + "\" class=\"none\">" + what +
         "</td></tr>\n";
}

const json& List(const json& report, const char* key) {
  static const json kEmpty = json::array();
  const json& v = Member(report, key);
  return v.is_array() ? v : kEmpty;
}

std::string Disclosures(const json& report) {
  std::string out =
      "<table>\n<thead><tr><th>When</th><th>From</th><th>To</th><th>What</th><th>Purpose</th>"
      "<th>Decision</th><th>Lawful basis</th><th>Consent at the time</th><th>Why</th>"
      "<th>Entry</th></tr></thead>\n<tbody>\n";
  const json& list = List(report, "disclosures");
  for (const json& d : list) {
    if (Member(d, "erased") == true) {
      out += ErasedRow(d, 10);
      continue;
    }
    std::string what = Record(d);
    if (const json& w = Member(d, "withheld"); w.is_array() && !w.empty()) {
      what += "<br>withheld:";
      for (const json& p : w) {
        if (p.is_string()) what += " <span class=\"mono\">" + E(p.get<std::string>()) + "</span>";
      }
    }
    std::string decision = Decision(Str(d, "decision")) + Override(d);
    if (const std::string acked = Str(d, "acknowledged_at"); !acked.empty()) {
      decision += "<br>received " + E(acked);
    }
    out += "<tr><td>" + Cell(Str(d, "at")) + "</td><td>" + Agency(Member(d, "from")) +
           "</td><td>" + Agency(Member(d, "to")) + "</td><td>" + what + "</td><td>" +
           Cell(Str(d, "purpose")) + "</td><td>" + decision + "</td><td>" +
           Cell(Str(d, "lawful_basis")) + "</td><td>" + Cell(Str(d, "consent")) + "</td><td>" +
           Reasons(Member(d, "reasons")) + "</td><td class=\"mono\">" + E(Str(d, "seq")) +
           "</td></tr>\n";
  }
  if (list.empty()) out += Empty(10, "Nothing about this subject was shared.");
  return out + "</tbody>\n</table>\n";
}

std::string Refusals(const json& report) {
  std::string out =
      "<table>\n<thead><tr><th>When</th><th>Asked by</th><th>To</th><th>What</th>"
      "<th>Purpose</th><th>Consent at the time</th><th>Why it was refused</th><th>Entry</th>"
      "</tr></thead>\n<tbody>\n";
  const json& list = List(report, "refusals");
  for (const json& r : list) {
    if (Member(r, "erased") == true) {
      out += ErasedRow(r, 8);
      continue;
    }
    const json& from = Member(r, "from").is_object() ? Member(r, "from") : Member(r, "by");
    std::string to = Member(r, "to").is_object() ? Agency(Member(r, "to")) : "";
    if (to.empty()) {
      const std::string op = Str(r, "operation");
      to = op.empty() ? Cell("") : "request: <span class=\"mono\">" + E(op) + "</span>";
    }
    out += "<tr><td>" + Cell(Str(r, "at")) + "</td><td>" + Agency(from) + "</td><td>" + to +
           "</td><td>" + Record(r) + "</td><td>" + Cell(Str(r, "purpose")) + "</td><td>" +
           Cell(Str(r, "consent")) + "</td><td>" + Reasons(Member(r, "reasons")) +
           "</td><td class=\"mono\">" + E(Str(r, "seq")) + "</td></tr>\n";
  }
  if (list.empty()) out += Empty(8, "Nothing was refused.");
  return out + "</tbody>\n</table>\n";
}

std::string Consents(const json& report) {
  const json& consents = Member(report, "consents");
  std::string out;
  const json& state = Member(consents, "state");
  if (state.is_object() && !state.empty()) {
    out += "<p>Current state, by purpose:</p>\n<ul>\n";
    for (const auto& [purpose, s] : state.items()) {
      out += "<li><span class=\"mono\">" + E(purpose) + "</span>: " +
             Cell(s.is_string() ? s.get<std::string>() : "") + "</li>\n";
    }
    out += "</ul>\n";
  }
  out +=
      "<table>\n<thead><tr><th>Recorded at</th><th>Purpose</th><th>Statement</th>"
      "<th>Recorded by</th><th>Agency</th><th>Evidence</th></tr></thead>\n<tbody>\n";
  const json& list = List(consents, "consents");
  for (const json& c : list) {
    out += "<tr><td>" + Cell(Str(c, "recorded_at")) + "</td><td>" + Cell(Str(c, "purpose")) +
           "</td><td>" + Cell(Str(c, "status")) + "</td><td>" + Cell(Str(c, "recorded_by")) +
           "</td><td class=\"mono\">" + Cell(Str(c, "agency")) + "</td><td>" +
           Cell(Str(c, "evidence")) + "</td></tr>\n";
  }
  if (list.empty()) out += Empty(6, "No consent statement has been recorded.");
  return out + "</tbody>\n</table>\n";
}

std::string Reads(const json& report) {
  std::string out =
      "<table>\n<thead><tr><th>When</th><th>Who</th><th>What they did</th><th>Purpose</th>"
      "<th>Record</th><th>Entry</th></tr></thead>\n<tbody>\n";
  const json& list = List(report, "reads");
  for (const json& r : list) {
    if (Member(r, "erased") == true) {
      out += ErasedRow(r, 6);
      continue;
    }
    out += "<tr><td>" + Cell(Str(r, "at")) + "</td><td>" + Agency(Member(r, "by")) +
           "</td><td>" + Cell(Str(r, "what")) + "</td><td>" + Cell(Str(r, "purpose")) +
           "</td><td>" + Record(r) + "</td><td class=\"mono\">" + E(Str(r, "seq")) +
           "</td></tr>\n";
  }
  if (list.empty()) out += Empty(6, "Nobody has looked at this subject's data.");
  return out + "</tbody>\n</table>\n";
}

std::string Events(const json& report) {
  const json& list = List(report, "events");
  if (list.empty()) return "<p class=\"none\">None.</p>\n";
  std::string out =
      "<table>\n<thead><tr><th>When</th><th>What happened</th><th>By</th><th>Record</th>"
      "<th>Entry</th></tr></thead>\n<tbody>\n";
  for (const json& r : list) {
    if (Member(r, "erased") == true) {
      out += ErasedRow(r, 5);
      continue;
    }
    out += "<tr><td>" + Cell(Str(r, "at")) + "</td><td class=\"mono\">" +
           Cell(Str(r, "action")) + "</td><td>" + Agency(Member(r, "by")) + "</td><td>" +
           Record(r) + "</td><td class=\"mono\">" + E(Str(r, "seq")) + "</td></tr>\n";
  }
  return out + "</tbody>\n</table>\n";
}

std::string Verify(const json& report) {
  const json& head = Member(report, "tree_head");
  std::string out =
      "<p>Every line above is an entry of the gateway's audit log, numbered in the column "
      "<em>Entry</em>. The log is a Merkle tree (RFC 9162) whose heads the gateway signs with its "
      "Ed25519 key. Anyone can check that an entry is in the signed log, without trusting the "
      "gateway: <code>safegatectl audit prove --seq N</code> writes a proof bundle for entry N, "
      "and <code>safegatectl audit check-proof BUNDLE --public-key KEY</code> checks it with "
      "the key below.</p>\n";
  if (!head.is_object()) {
    return out + "<p class=\"none\">No tree head had been signed when this report was made.</p>\n";
  }
  out += "<dl class=\"facts\">\n";
  for (const auto& [key, label] :
       {std::pair<const char*, const char*>{"tree_size", "Entries signed (tree size)"},
        {"root_hash", "Root hash (SHA-256)"},
        {"timestamp", "Signed at (ms since 1970, UTC)"},
        {"signature", "Signature (Ed25519, base64)"},
        {"public_key", "Gateway's public key (base64)"}}) {
    out += "<dt>" + std::string(label) + "</dt><dd class=\"mono\">" + Cell(Str(head, key)) +
           "</dd>\n";
  }
  out += "</dl>\n";
  out += "<p>Entries numbered up to the tree size are covered by this head; later ones by the "
         "next head the gateway signs.</p>\n";
  return out;
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string RenderSubjectReportHtml(const json& report) {
  const std::string subject = Str(report, "subject");
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>Subject access report: " + E(subject) + "</title>\n<style>" + kStyle +
      "</style>\n</head>\n<body>\n";
  out += "<h1>Subject access report</h1>\n";
  out += "<p class=\"lead\">Every record about one person that this gateway passed on, held "
         "back or showed, as its audit log records it.</p>\n";

  out += "<h2>Who this report is about</h2>\n<dl class=\"facts\">\n";
  out += "<dt>Subject reference</dt><dd class=\"mono\">" + Cell(subject) + "</dd>\n";
  out += "<dt>Gateway area</dt><dd>" + Cell(Str(Member(report, "gateway"), "area")) + "</dd>\n";
  out += "<dt>Report made at</dt><dd>" + Cell(Str(report, "generated_at")) + "</dd>\n";
  out += "<dt>Made by</dt><dd class=\"mono\">" + Cell(Str(report, "generated_by")) + "</dd>\n";
  out += "<dt>Purpose</dt><dd>" + Cell(Str(report, "purpose")) + "</dd>\n";
  out += "<dt>Audit entries about the subject</dt><dd>" + Cell(Str(report, "entries")) +
         (Member(report, "truncated") == true ? " (the report shows the first of them only)" : "") +
         "</dd>\n";
  out += "<dt>This report's own entry</dt><dd class=\"mono\">" + Cell(Str(report, "report_seq")) +
         "</dd>\n</dl>\n";
  out += "<p>The report names the person only by the reference above.</p>\n";

  out += "<h2>What was shared, with whom, when and why</h2>\n" + Disclosures(report);
  out += "<h2>What was refused</h2>\n" + Refusals(report);
  out += "<h2>Consents</h2>\n" + Consents(report);
  out += "<h2>Who looked</h2>\n" + Reads(report);
  out += "<h2>Other events</h2>\n" + Events(report);
  out += "<h2>How to verify this report</h2>\n" + Verify(report);
  out += "<footer>Made by safegate from the gateway's audit log. Times are UTC.</footer>\n";
  out += "</body>\n</html>\n";
  return out;
}

}  // namespace safegate::ctl
