// One synthetic child, known to all three agencies of Bradford, for the ingest, linking and
// flags tests (core and integration) and the demo: Amira Hussain, born 2011-03-07, NHS number
// 999 000 0107 (the range reserved for testing), CSC id BRA-000777, police nominal N-200001.
//
// - bradford-csc registers her with a referral pushed as a canonical record: it carries her
//   NHS number and CSC id, names, date of birth and postcode (CSC case systems hold all of
//   them), so it is the record that ties the identifiers together;
// - wyp's Niche export spells her family name "Hussein" and has no NHS number: she is linked
//   by score (similar family name, same forename, date of birth and postcode). Its CSE marker
//   was due for review on 2026-04-11, so it is overdue from then on;
// - bthft's FHIR bundle flags a safeguarding concern against her NHS number: exact link;
// - bradford-csc's CIN census has her by CSC id and date of birth only: exact link, and her
//   child protection plan gives a cp_plan flag.
//
// Everyone in it is invented.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace safegate::testing::story {

inline constexpr const char* kNhs = "9990000107";
inline constexpr const char* kNhsRef = "nhs:9990000107";
inline constexpr const char* kCscRef = "csc:bradford:BRA-000777";
inline constexpr const char* kPoliceRef = "police:wyp:N-200001";

// bradford-csc's referral, as POST /v1/records takes it ("record").
inline nlohmann::json CscReferral() {
  return nlohmann::json::parse(R"({
    "kind": "referral",
    "subject": {"nhs_number": "9990000107",
                "local_ids": [{"system": "csc:bradford", "value": "BRA-000777"}],
                "given_name": "Amira", "family_name": "Hussain",
                "birth_date": "2011-03-07", "postcode": "BD3 9AB"},
    "source": {"agency": "bradford-csc", "system": "liquidlogic", "record_id": "REF-000777-1",
               "version": 1, "recorded_at": "2026-01-12T10:00:00Z"},
    "classification": {"special_category": false, "criminal_offence": false,
                       "schedule12a": [1, 2], "handling": "P"},
    "body": {"referral_date": "2026-01-12", "referral_source": "5A",
             "reason": "Police referral after a child sexual exploitation concern."}
  })");
}

// wyp's Niche export (niche-xml): Amira as "Hussein" without an NHS number, and another
// child, Jade Walker, who is linked to nobody.
inline const std::string kNicheXml = R"(<?xml version="1.0" encoding="UTF-8"?>
<NicheExport>
  <Nominals>
    <Nominal id="N-200001">
      <Surname>Hussein</Surname>
      <Forenames>Amira</Forenames>
      <DateOfBirth>2011-03-07</DateOfBirth>
      <Postcode>bd3 9ab</Postcode>
    </Nominal>
    <Nominal id="N-200002">
      <Surname>Walker</Surname>
      <Forenames>Jade</Forenames>
      <DateOfBirth>2010-11-20</DateOfBirth>
      <Postcode>BD5 7QT</Postcode>
    </Nominal>
  </Nominals>
  <Occurrences>
    <Occurrence id="OCC-2026-000101" nominal="N-200001">
      <Type>Child sexual exploitation</Type>
      <OccurredAt>2026-01-10T22:40:00Z</OccurredAt>
      <Recorded>2026-01-11T09:12:00Z</Recorded>
      <Summary>Found in a car with two adult males after being reported missing.</Summary>
      <Outcome>Referred to CSC</Outcome>
    </Occurrence>
  </Occurrences>
  <WarningMarkers>
    <WarningMarker id="WM-70001" nominal="N-200001">
      <Type>CSE</Type>
      <Level>HIGH</Level>
      <Recorded>2026-01-11T09:30:00Z</Recorded>
      <Start>2026-01-11</Start>
      <Review>2026-04-11</Review>
    </WarningMarker>
    <WarningMarker id="WM-70002" nominal="N-200002">
      <Type>MISSING</Type>
      <Recorded>2026-09-14T18:00:00Z</Recorded>
      <Start>2026-09-14</Start>
      <End>2026-09-20</End>
    </WarningMarker>
  </WarningMarkers>
</NicheExport>
)";

// bthft's flags (fhir-flag): a safeguarding concern against Amira's NHS number.
inline const std::string kFhirBundle = R"({
  "resourceType": "Bundle",
  "type": "collection",
  "entry": [{
    "fullUrl": "urn:uuid:0b6f8f5e-2d1c-4a7b-9e3f-000000000107",
    "resource": {
      "resourceType": "Flag",
      "id": "bthft-flag-20260201-107",
      "meta": {"versionId": "1", "lastUpdated": "2026-02-01T10:15:00Z"},
      "extension": [
        {"url": "https://safegate.invalid/fhir/StructureDefinition/review-date",
         "valueDate": "2027-02-01"},
        {"url": "https://safegate.invalid/fhir/StructureDefinition/contact",
         "extension": [{"url": "office-hours", "valueString": "01274 364000"},
                       {"url": "out-of-hours", "valueString": "01274 542200"}]}
      ],
      "status": "active",
      "code": {"coding": [{"system": "http://snomed.info/sct", "code": "836881000000105",
                           "display": "Child is cause for safeguarding concern"}]},
      "subject": {"identifier": {"system": "https://fhir.nhs.uk/Id/nhs-number",
                                 "value": "9990000107"}},
      "period": {"start": "2026-02-01"}
    }
  }]
}
)";

// bradford-csc's CIN census (cin-xml): Amira by CSC id, with a child protection plan.
inline const std::string kCinXml = R"(<?xml version="1.0" encoding="UTF-8"?>
<Message>
  <Header>
    <CollectionDetails>
      <Collection>CIN</Collection>
      <Year>2026</Year>
      <ReferenceDate>2026-03-31</ReferenceDate>
    </CollectionDetails>
    <Source>
      <SourceLevel>L</SourceLevel>
      <LEA>380</LEA>
      <SoftwareCode>Local Authority</SoftwareCode>
      <Release>1</Release>
      <SerialNo>001</SerialNo>
      <DateTime>2026-04-02T11:14:05</DateTime>
    </Source>
  </Header>
  <Children>
    <Child>
      <ChildIdentifiers>
        <LAchildID>BRA-000777</LAchildID>
        <UPNunknown>UN1</UPNunknown>
        <PersonBirthDate>2011-03-07</PersonBirthDate>
        <Sex>F</Sex>
      </ChildIdentifiers>
      <CINdetails>
        <CINreferralDate>2026-01-12</CINreferralDate>
        <ReferralSource>5A</ReferralSource>
        <PrimaryNeedCode>N1</PrimaryNeedCode>
        <ReferralNFA>false</ReferralNFA>
        <Section47>
          <S47ActualStartDate>2026-01-14</S47ActualStartDate>
          <DateOfInitialCPC>2026-01-27</DateOfInitialCPC>
          <ICPCnotRequired>false</ICPCnotRequired>
        </Section47>
        <ChildProtectionPlans>
          <CPPstartDate>2026-01-27</CPPstartDate>
          <LatestCategoryOfAbuse>SAB</LatestCategoryOfAbuse>
          <Reviews>
            <CPPreviewDate>2026-04-20</CPPreviewDate>
          </Reviews>
        </ChildProtectionPlans>
      </CINdetails>
    </Child>
  </Children>
</Message>
)";

}  // namespace safegate::testing::story
