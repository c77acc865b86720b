#include "daemon/transfer/bundle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemon/transfer/test_util.h"
#include "daemon/transfer/working_days.h"
#include "record/record.h"

namespace safegate::transfer {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::TestGateway;

constexpr std::string_view kSubject = "nhs:9990000018";

json Flag(std::string_view type, std::string_view level, std::string_view status) {
  return {{"kind", "flag"},
          {"subject", {{"nhs_number", "9990000018"}, {"given_name", "Test"}}},
          {"source",
           {{"agency", "wyp"},
            {"system", "niche"},
            {"record_id", "OCC-2018-001234"},
            {"version", 1},
            {"recorded_at", "2026-10-31T09:12:00Z"}}},
          {"classification",
           {{"special_category", false},
            {"criminal_offence", true},
            {"schedule12a", {1, 2, 7}},
            {"handling", "P"}}},
          {"body", {{"type", type}, {"level", level}, {"status", status}}}};
}

Bundle Proposal() {
  const int64_t t0 = ParseTimeMs("2026-12-24T10:00:00Z").value();
  Bundle b;
  b.transfer_id = "trf_00112233445566778899aabbccddeeff";
  b.message_id = MessageIdFor(b.transfer_id, MessageKind::kProposal);
  b.kind = MessageKind::kProposal;
  b.from_area = "bradford";
  b.to_area = "cambridgeshire";
  b.created_ms = t0;
  ProposalBody p;
  p.subject = std::string(kSubject);
  p.reason = Reason::kMissing;
  p.note = "Moved to a placement in Cambridge; reported missing there overnight.";
  p.leads = {{"bradford", "bradford-csc", t0}, {"bradford", "wyp", t0}};
  p.deadlines = {{"acceptance", t0 + 5 * kMsPerDay},
                 {"transfer_in_conference", t0 + 26 * kMsPerDay}};
  p.records = {
      {config::Role::kCsc, Flag("cse_risk", "high", "active"), {"permit", "6(1)(e)", "r1", {}}},
      {config::Role::kPolice,
       Flag("cse_risk", "high", "active"),
       {"redact", "6(1)(e); DPA 2018 Sch 1 para 18", "r2", {"/body/contact"}}},
  };
  p.policy = {"case_transfer", std::string(64, 'a'), 1, 1, 0};
  b.proposal = p;
  return b;
}

Bundle Answer(MessageKind kind) {
  Bundle b = Proposal();
  b.proposal.reset();
  b.kind = kind;
  b.from_area = "cambridgeshire";
  b.to_area = "bradford";
  switch (kind) {
    case MessageKind::kAck:
      b.ack = AckBody{MessageIdFor(b.transfer_id, MessageKind::kProposal)};
      b.message_id = MessageIdFor(b.transfer_id, kind);
      break;
    case MessageKind::kAccept:
      b.accept = AnswerBody{LeadRole::kPolice, "cambs-police", "DI Example", ""};
      b.message_id = MessageIdFor(b.transfer_id, kind, LeadRole::kPolice);
      break;
    case MessageKind::kDecline:
      b.decline = AnswerBody{LeadRole::kCsc, "cambs-csc", "", "Not resident here"};
      b.message_id = MessageIdFor(b.transfer_id, kind);
      break;
    case MessageKind::kConferenceHeld:
      b.conference_held = ConferenceBody{"cambs-csc", b.created_ms + kMsPerDay};
      b.message_id = MessageIdFor(b.transfer_id, kind);
      break;
    case MessageKind::kProposal:
      break;
  }
  return b;
}

TEST(Bundle, JsonRoundTripEveryKind) {
  for (const Bundle& b : {Proposal(), Answer(MessageKind::kAck), Answer(MessageKind::kAccept),
                          Answer(MessageKind::kDecline), Answer(MessageKind::kConferenceHeld)}) {
    const json j = BundleToJson(b);
    EXPECT_TRUE(j.contains(std::string(MessageKindName(b.kind)))) << j.dump();
    auto back = BundleFromJson(j);
    ASSERT_TRUE(back.ok()) << back.status().ToString() << " "
                           << (back.status().problems().empty()
                                   ? ""
                                   : back.status().problems()[0].where + " " +
                                         back.status().problems()[0].what);
    EXPECT_EQ(*back, b) << MessageKindName(b.kind);
  }
}

TEST(Bundle, StrictParseNamesEveryProblem) {
  json j = BundleToJson(Proposal());
  j["proposal"]["reason"] = "teleported";
  j["proposal"]["leads"]["police"]["area"] = "cambridgeshire";
  j["proposal"]["records"][0]["decision"]["effect"] = "deny";
  j["extra"] = 1;
  j["message_id"] = "trf_00112233445566778899aabbccddeeff:accept";
  auto r = BundleFromJson(j, "/payload");
  ASSERT_FALSE(r.ok());
  std::vector<std::string> where;
  for (const Problem& p : r.status().problems()) where.push_back(p.where);
  EXPECT_THAT(where,
              ::testing::IsSupersetOf(
                  {"/payload/proposal/reason", "/payload/proposal/records/0/decision/effect",
                   "/payload/extra", "/payload/message_id", "/payload/proposal/policy/permitted"}));

  // A body of another kind than `kind` is an unknown member.
  json k = BundleToJson(Answer(MessageKind::kAck));
  k["accept"] = json::object();
  auto r2 = BundleFromJson(k);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().problems()[0].where, "/accept");

  // The sending area leads in a proposal.
  json l = BundleToJson(Proposal());
  l["proposal"]["leads"]["csc"]["area"] = "cambridgeshire";
  auto r3 = BundleFromJson(l);
  ASSERT_FALSE(r3.ok());
  EXPECT_EQ(r3.status().problems()[0].where, "/proposal/leads/csc/area");
}

// A sending gateway (Bradford), a receiving gateway (Cambridgeshire) and a stranger (York),
// each with real keys; Cambridgeshire's registry lists Bradford and York as peers.
class BundleCrypto : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cambs_peers_
                    .Add("bradford", bradford_.keys->SigningPublicKeyBase64(),
                         bradford_.keys->SealingPublicKeyBase64())
                    .ok());
    ASSERT_TRUE(cambs_peers_.Add("york", "", "").ok());  // listed, keys not yet exchanged
  }

  OpenResult OpenAtCambs(std::string_view sealed, std::string_view tls_area = "bradford") {
    return OpenBundle(sealed, *cambs_.keys, "cambridgeshire", cambs_peers_, tls_area);
  }

  static std::string Payload(const Bundle& b) { return record::CanonicalJson(BundleToJson(b)); }

  // Signs `payload` with `signer`'s key, claims `signer_area`, seals to `to`.
  static std::string Forge(std::string_view payload, const GatewayKeys& signer,
                           std::string_view signer_area, const GatewayKeys& to) {
    return SealTo(to.sealing_public_key(),
                  EnvelopeBytes(payload, signer.Sign(SigningInput(payload)), signer_area));
  }

  static void ExpectRefused(const OpenResult& r, RefusalCode code, std::string_view where = "") {
    ASSERT_FALSE(r.ok()) << "accepted; expected " << RefusalCodeName(code);
    EXPECT_EQ(RefusalCodeName(r.refusal().code), RefusalCodeName(code)) << r.refusal().detail;
    EXPECT_THAT(r.refusal().detail, StartsWith(std::string(RefusalCodeName(code)) + ": "));
    if (!where.empty()) {
      EXPECT_EQ(r.refusal().where, where) << r.refusal().detail;
    }
    // R7: nothing personal in a refusal, which ends up in logs and audit entries.
    EXPECT_THAT(r.refusal().detail, ::testing::Not(HasSubstr("9990000018")));
  }

  TestGateway bradford_{"bradford"};
  TestGateway cambs_{"cambridgeshire"};
  TestGateway york_{"york"};
  PeerDirectory cambs_peers_;
};

TEST_F(BundleCrypto, SealedBundleOpensAtTheReceiver) {
  const Bundle b = Proposal();
  auto sealed = SealBundle(b, *bradford_.keys, cambs_.AsPeer());
  ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
  // Nothing readable travels: not the subject, not the note.
  EXPECT_EQ(sealed->find("9990000018"), std::string::npos);
  EXPECT_EQ(sealed->find("bradford"), std::string::npos);

  OpenResult opened = OpenAtCambs(*sealed);
  ASSERT_TRUE(opened.ok()) << opened.refusal().detail;
  EXPECT_EQ(opened.value().bundle, b);
  // The ids the store's replay check keys on, and the evidence it may keep.
  EXPECT_EQ(opened.value().bundle.transfer_id, b.transfer_id);
  EXPECT_EQ(opened.value().bundle.message_id, b.transfer_id + ":proposal");
  EXPECT_EQ(opened.value().payload, Payload(b));
  EXPECT_TRUE(VerifySignature(bradford_.keys->signing_public_key(),
                              SigningInput(opened.value().payload), opened.value().signature));
  // The documented signing input: the context, one NUL, the canonical payload.
  EXPECT_EQ(SigningInput("P"), std::string("safegate-transfer-v1\0P", 22));

  // The same bytes again open the same way (replay is the store's call, by the ids).
  OpenResult replay = OpenAtCambs(*sealed);
  ASSERT_TRUE(replay.ok());
  EXPECT_EQ(replay.value().payload, opened.value().payload);
  // Each sealing is fresh (ephemeral key): the same message seals to different bytes.
  auto again = SealBundle(b, *bradford_.keys, cambs_.AsPeer());
  ASSERT_TRUE(again.ok());
  EXPECT_NE(*again, *sealed);
}

TEST_F(BundleCrypto, EveryKindTravels) {
  PeerDirectory bradford_peers;
  ASSERT_TRUE(bradford_peers
                  .Add("cambridgeshire", cambs_.keys->SigningPublicKeyBase64(),
                       cambs_.keys->SealingPublicKeyBase64())
                  .ok());
  for (MessageKind kind : {MessageKind::kAck, MessageKind::kAccept, MessageKind::kDecline,
                           MessageKind::kConferenceHeld}) {
    const Bundle b = Answer(kind);
    auto sealed = SealBundle(b, *cambs_.keys, bradford_.AsPeer());
    ASSERT_TRUE(sealed.ok()) << sealed.status().ToString();
    OpenResult r =
        OpenBundle(*sealed, *bradford_.keys, "bradford", bradford_peers, "cambridgeshire");
    ASSERT_TRUE(r.ok()) << r.refusal().detail;
    EXPECT_EQ(r.value().bundle, b);
  }
}

TEST_F(BundleCrypto, TamperedCiphertextIsRefused) {
  auto sealed = SealBundle(Proposal(), *bradford_.keys, cambs_.AsPeer());
  ASSERT_TRUE(sealed.ok());
  for (size_t at : {size_t{0}, size_t{40}, sealed->size() / 2, sealed->size() - 1}) {
    std::string t = *sealed;
    t[at] = static_cast<char>(t[at] ^ 0x01);
    ExpectRefused(OpenAtCambs(t), RefusalCode::kNotSealedToUs);
  }
  ExpectRefused(OpenAtCambs(sealed->substr(0, sealed->size() - 1)), RefusalCode::kNotSealedToUs);
  ExpectRefused(OpenAtCambs(""), RefusalCode::kNotSealedToUs);
  EXPECT_EQ(OpenAtCambs("").status().code(), ErrorCode::kBadRequest);
}

TEST_F(BundleCrypto, SealedToAnotherKeyIsRefused) {
  PeerKeys wrong = cambs_.AsPeer();
  wrong.sealing = york_.keys->sealing_public_key();
  auto sealed = SealBundle(Proposal(), *bradford_.keys, wrong);
  ASSERT_TRUE(sealed.ok());
  ExpectRefused(OpenAtCambs(*sealed), RefusalCode::kNotSealedToUs);
}

TEST_F(BundleCrypto, TamperedPayloadIsRefused) {
  const std::string good = Payload(Proposal());
  Bundle changed = Proposal();
  changed.proposal->reason = Reason::kMoved;
  const std::string bad = Payload(changed);

  // Altered after signing, original signature kept, re-sealed.
  const std::string sig = bradford_.keys->Sign(SigningInput(good));
  ExpectRefused(
      OpenAtCambs(SealTo(cambs_.keys->sealing_public_key(), EnvelopeBytes(bad, sig, "bradford"))),
      RefusalCode::kBadSignature, "/envelope/signature");
  // Altered and re-signed by someone else's key, claiming to be Bradford.
  ExpectRefused(OpenAtCambs(Forge(bad, *york_.keys, "bradford", *cambs_.keys)),
                RefusalCode::kBadSignature);
  // Signed without the domain separator (a signature made for some other use of the key).
  const std::string raw_sig = bradford_.keys->Sign(good);
  ExpectRefused(OpenAtCambs(SealTo(cambs_.keys->sealing_public_key(),
                                   EnvelopeBytes(good, raw_sig, "bradford"))),
                RefusalCode::kBadSignature);
  EXPECT_EQ(OpenAtCambs(Forge(bad, *york_.keys, "bradford", *cambs_.keys)).status().code(),
            ErrorCode::kForbidden);
}

TEST_F(BundleCrypto, UnsignedIsRefused) {
  const std::string payload = Payload(Proposal());
  // An empty signature, and no signature member at all.
  ExpectRefused(OpenAtCambs(SealTo(cambs_.keys->sealing_public_key(),
                                   EnvelopeBytes(payload, "", "bradford"))),
                RefusalCode::kUnsigned, "/envelope/signature");
  const std::string no_sig =
      record::CanonicalJson(json{{"payload", ToBase64(payload)}, {"signer_area", "bradford"}});
  ExpectRefused(OpenAtCambs(SealTo(cambs_.keys->sealing_public_key(), no_sig)),
                RefusalCode::kUnsigned);
  // A bare payload sealed without any envelope.
  ExpectRefused(OpenAtCambs(SealTo(cambs_.keys->sealing_public_key(), payload)),
                RefusalCode::kMalformed);
}

TEST_F(BundleCrypto, MisaddressedIsRefused) {
  // Signed properly by Bradford, sealed to Cambridgeshire, but addressed to York.
  Bundle b = Proposal();
  b.to_area = "york";
  ExpectRefused(OpenAtCambs(Forge(Payload(b), *bradford_.keys, "bradford", *cambs_.keys)),
                RefusalCode::kMisaddressed, "/payload/to_area");
  // SealBundle itself will not seal a message to the wrong peer's keys.
  auto refused = SealBundle(b, *bradford_.keys, cambs_.AsPeer());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), ErrorCode::kInternal);
}

TEST_F(BundleCrypto, UnknownSenderIsRefused) {
  Bundle b = Proposal();
  b.from_area = "york";
  b.proposal->leads.csc.area = "york";
  b.proposal->leads.police.area = "york";
  const std::string sealed = Forge(Payload(b), *york_.keys, "york", *cambs_.keys);
  // York is a peer whose keys have not been exchanged.
  ExpectRefused(OpenAtCambs(sealed, "york"), RefusalCode::kUnknownSender, "/envelope/signer_area");
  // Leeds is not a peer at all.
  b.from_area = "leeds";
  b.proposal->leads.csc.area = "leeds";
  b.proposal->leads.police.area = "leeds";
  ExpectRefused(OpenAtCambs(Forge(Payload(b), *york_.keys, "leeds", *cambs_.keys), "leeds"),
                RefusalCode::kUnknownSender);
}

TEST_F(BundleCrypto, SenderMismatchIsRefused) {
  // A genuine Bradford message, arriving over a connection authenticated as York's gateway.
  auto sealed = SealBundle(Proposal(), *bradford_.keys, cambs_.AsPeer());
  ASSERT_TRUE(sealed.ok());
  ExpectRefused(OpenAtCambs(*sealed, "york"), RefusalCode::kSenderMismatch,
                "/envelope/signer_area");
  // Bradford signing a payload that claims to come from York.
  Bundle b = Proposal();
  b.from_area = "york";
  b.proposal->leads.csc.area = "york";
  b.proposal->leads.police.area = "york";
  ExpectRefused(OpenAtCambs(Forge(Payload(b), *bradford_.keys, "bradford", *cambs_.keys)),
                RefusalCode::kSenderMismatch, "/payload/from_area");
}

TEST_F(BundleCrypto, MalformedPayloadNamesThePointer) {
  json j = BundleToJson(Proposal());
  j["proposal"]["subject"] = "nhs:9990000019";  // bad check digit
  OpenResult r =
      OpenAtCambs(Forge(record::CanonicalJson(j), *bradford_.keys, "bradford", *cambs_.keys));
  ExpectRefused(r, RefusalCode::kMalformed, "/payload/proposal/subject");
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidInput);
  ASSERT_EQ(r.status().problems().size(), 1u);
  EXPECT_EQ(r.status().problems()[0].where, "/payload/proposal/subject");

  ExpectRefused(OpenAtCambs(Forge("not json", *bradford_.keys, "bradford", *cambs_.keys)),
                RefusalCode::kMalformed, "/payload");
  ExpectRefused(OpenAtCambs(SealTo(cambs_.keys->sealing_public_key(), "{\"payload\":1}")),
                RefusalCode::kMalformed, "/envelope/payload");
}

TEST_F(BundleCrypto, OtherVersionsAreRefused) {
  json j = BundleToJson(Proposal());
  j["version"] = 2;
  j["something_new"] = true;
  ExpectRefused(
      OpenAtCambs(Forge(record::CanonicalJson(j), *bradford_.keys, "bradford", *cambs_.keys)),
      RefusalCode::kUnsupportedVersion, "/payload/version");
}

TEST_F(BundleCrypto, SealBundleRefusesWhatTheReceiverWouldRefuse) {
  Bundle b = Proposal();
  b.proposal->policy.permitted = 7;  // disagrees with the records
  auto r = SealBundle(b, *bradford_.keys, cambs_.AsPeer());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInternal);
  EXPECT_THAT(r.status().detail(), HasSubstr("/payload/proposal/policy/permitted"));

  PeerKeys no_keys{"cambridgeshire", std::nullopt, std::nullopt};
  auto r2 = SealBundle(Proposal(), *bradford_.keys, no_keys);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), ErrorCode::kUnavailable);
  EXPECT_THAT(r2.status().detail(), HasSubstr("cambridgeshire"));
}

TEST(Bundle, Ids) {
  const std::string id = NewTransferId();
  EXPECT_TRUE(IsTransferId(id)) << id;
  EXPECT_NE(NewTransferId(), id);
  EXPECT_FALSE(IsTransferId("trf_0011"));
  EXPECT_FALSE(IsTransferId("trf_00112233445566778899AABBCCDDEEFF"));
  EXPECT_EQ(MessageIdFor(id, MessageKind::kAccept, LeadRole::kCsc), id + ":accept:csc_lead");
  EXPECT_EQ(MessageIdFor(id, MessageKind::kDecline), id + ":decline");
  for (RefusalCode c :
       {RefusalCode::kNotSealedToUs, RefusalCode::kMalformed, RefusalCode::kUnsigned,
        RefusalCode::kUnknownSender, RefusalCode::kSenderMismatch, RefusalCode::kBadSignature,
        RefusalCode::kMisaddressed, RefusalCode::kUnsupportedVersion}) {
    EXPECT_FALSE(RefusalCodeName(c).empty());
  }
}

}  // namespace
}  // namespace safegate::transfer
