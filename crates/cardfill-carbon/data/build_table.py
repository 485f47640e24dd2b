#!/usr/bin/env python3
"""Builds `intensity.csv`, cardfill's grid carbon intensity table, from public data.

Usage: python3 build_table.py [CARBON_DATA_DIR]   (default: /work/shared/carbon-data)

Inputs (see SOURCES.md for licences):
- Our World in Data `carbon_intensity_elec` per country (via CodeCarbon's global_energy_mix.json),
  alpha-3 -> alpha-2 from carbontracker's carbon-intensities.csv and eco2AI's carbon_index.csv
  (codes only, no values);
- US EPA eGRID2023 state CO2e total output rates (STC2ERTA; via CodeCarbon 3.3.2's
  2023/usa_emissions.json, lbs/MWh);
- China's 2023 provincial electricity CO2 factors (MEE/NBS Announcement 2025 No. 47, via
  CodeCarbon 3.3.2's 2023/china_provincial_emissions.json);
- Nordic bidding zones SE1-SE4, NO1-NO5 (ENTSO-E 2025 generation mix x per-source factors, via
  CodeCarbon 3.3.2's nordic_emissions.json);
- Canadian provincial generation shares 2023 (CodeCarbon's canada_energy_mix.json, source not
  documented upstream) with CodeCarbon's fossil emission factors;
- Google Cloud region carbon data (via CodeCarbon's cloud/impact.csv);
- inputs/cloud_regions.csv (region -> city and grid, curated) and pue.csv (provider PUE, also embedded).

Every output row has a source, a year and a method (gas basis, scope, generation/consumption). Cloud regions other than Google's take the intensity
of the grid they sit on. Re-run after editing the inputs; the tests read the committed output.
"""
import csv
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/carbon-data"
CC = os.path.join(DATA, "codecarbon/codecarbon/data")
CC332 = os.path.join(DATA, "codecarbon-3.3.2/data")

OWID = "Our World in Data (Ember, Energy Institute)"
EGRID = "US EPA eGRID2023 state CO2e output rate (STC2ERTA)"
CHINA = "China MEE/NBS 2023 provincial electricity CO2 factor (Announcement 2025 No. 47)"
NORDIC = "ENTSO-E 2025 generation mix x per-source factors (CodeCarbon 3.3.2 nordic_emissions.json)"
CANADA = "CodeCarbon Canada mix x fossil factors (mix source undocumented)"
GOOGLE = "Google Cloud region carbon data"
# Method of each source: gas basis, scope of the factors, generation or consumption.
METHOD = {
    OWID: "CO2e lifecycle, generation",
    EGRID: "CO2e combustion, generation (total output rate)",
    CHINA: "CO2 only, generation with inter-provincial transfers",
    NORDIC: "CO2e lifecycle factors, production mix (lower bound where uncovered)",
    CANADA: "CO2 combustion, generation (fossil shares only)",
    GOOGLE: "CO2e location-based, hourly grid average",
}
NORDIC_NAMES = {
    "SE1": "Northern Sweden", "SE2": "North-central Sweden", "SE3": "South-central Sweden",
    "SE4": "Southern Sweden", "NO1": "Oslo, Norway", "NO2": "Southern Norway",
    "NO3": "Central Norway", "NO4": "Northern Norway", "NO5": "Western Norway",
}
LBS_PER_MWH_TO_G_PER_KWH = 0.45359237

# Electricity Maps zones for subdivisions whose balancing area is unambiguous.
EM_ZONES = {
    "US-CA": "US-CAL-CISO", "US-TX": "US-TEX-ERCO", "US-VA": "US-MIDA-PJM", "US-OH": "US-MIDA-PJM",
    "US-PA": "US-MIDA-PJM", "US-NJ": "US-MIDA-PJM", "US-MD": "US-MIDA-PJM", "US-NY": "US-NY-NYIS",
    "US-OR": "US-NW-BPAT", "US-WA": "US-NW-BPAT", "US-FL": "US-FLA-FPL", "US-IA": "US-MIDW-MISO",
    "US-IL": "US-MIDW-MISO", "CA-QC": "CA-QC", "CA-ON": "CA-ON", "CA-AB": "CA-AB", "CA-BC": "CA-BC",
}
CA_PROVINCES = {
    "alberta": "AB", "british columbia": "BC", "manitoba": "MB", "new brunswick": "NB",
    "newfoundland and labrador": "NL", "northwest territories": "NT", "nova scotia": "NS",
    "nunavut": "NU", "ontario": "ON", "prince edward island": "PE", "quebec": "QC",
    "saskatchewan": "SK", "yukon": "YT",
}
# Google regions whose row names a city only: the grid they sit on.
GCP_GRID = {"Columbus": "US-OH", "Dallas": "US-TX", "Montreal": "CA-QC", "Toronto": "CA-ON",
            "Northern Virginia": "US-VA"}
COLUMNS = ["key", "kind", "provider", "name", "location", "grid", "g_per_kwh", "source", "year",
           "method", "pue", "pue_source", "em_zone"]


def rows_of(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def main():
    alpha2 = {"SHN": "SH", "TLS": "TL"}
    for r in rows_of(os.path.join(DATA, "extra/eco2ai/carbon_index.csv")):
        if len(r["alpha_3_code"]) == 3 and len(r["alpha_2_code"]) == 2:
            alpha2[r["alpha_3_code"]] = r["alpha_2_code"]
    for r in rows_of(os.path.join(DATA, "extra/carbontracker/carbon-intensities.csv")):
        alpha2[r["Code"]] = r["alpha-2"]

    out = {}

    def add(row):
        assert row["key"] not in out, row["key"]
        row.setdefault("method", METHOD.get(row["source"], ""))
        out[row["key"]] = row

    countries = {}
    mix = json.load(open(os.path.join(CC, "private_infra/global_energy_mix.json")))
    for a3, c in sorted(mix.items()):
        g = c.get("carbon_intensity")
        if not g or g <= 0:  # CAF = 0.0: no data
            continue
        a2 = alpha2[a3]
        countries[a2] = c["country_name"]
        add(dict(key=a2, kind="country", provider="", name=c["country_name"],
                 location=c["country_name"], grid=a2, g_per_kwh=round(g, 1), source=OWID,
                 year=c["year"], pue="", pue_source="", em_zone=a2))

    states = json.load(open(os.path.join(CC332, "private_infra/2023/usa_emissions.json")))
    assert states["_source"]["year"] == 2023 and states["_source"]["field"] == "STC2ERTA"
    for name, s in sorted(states.items()):
        if name in ("usa", "_unit", "_source"):
            continue
        key = "US-" + s["regionCode"]
        title = name.title().replace(" Of ", " of ")
        add(dict(key=key, kind="subdivision", provider="", name=title,
                 location=f"{title}, United States", grid=key,
                 g_per_kwh=round(s["emissions"] * LBS_PER_MWH_TO_G_PER_KWH, 1), source=EGRID,
                 year=2023, pue="", pue_source="", em_zone=EM_ZONES.get(key, "")))

    ca = json.load(open(os.path.join(CC, "private_infra/2023/canada_energy_mix.json")))
    for name, m in sorted(ca.items()):
        key = "CA-" + CA_PROVINCES[name]
        g = (m["coal"] * 995.7 + m["petroleum"] * 816.7 + m["naturalGas"] * 743.8) / 100
        title = name.title().replace(" And ", " and ")
        add(dict(key=key, kind="subdivision", provider="", name=title,
                 location=f"{title}, Canada", grid=key, g_per_kwh=round(max(g, 0.1), 1),
                 source=CANADA, year=2023, pue="", pue_source="", em_zone=EM_ZONES.get(key, "")))

    cn = json.load(open(os.path.join(CC332, "private_infra/2023/china_provincial_emissions.json")))
    assert cn["metadata"]["year"] == 2023
    for key, c in sorted(cn["data"].items()):
        assert c["unit"] == "gCO2/kWh" and c["year"] == 2023, key
        add(dict(key=key, kind="subdivision", provider="", name=c["description"],
                 location=f'{c["description"]}, China', grid=key,
                 g_per_kwh=round(c["emission_factor"], 1), source=CHINA, year=2023, pue="",
                 pue_source="", em_zone=""))

    nordic = json.load(open(os.path.join(CC332, "private_infra/nordic_emissions.json")))
    for zone, z in sorted(nordic["data"].items()):
        if zone not in NORDIC_NAMES:  # FI: a prior value without a method; the country row stays
            continue
        key = f"{zone[:2]}-{zone}"
        add(dict(key=key, kind="subdivision", provider="", name=f"Bidding zone {zone}",
                 location=f"{NORDIC_NAMES[zone]} (bidding zone {zone})", grid=key,
                 g_per_kwh=round(z["emission_factor"], 1), source=NORDIC, year=z["year"], pue="",
                 pue_source="", em_zone=key))

    pue = {r["provider"]: r for r in rows_of(os.path.join(HERE, "pue.csv"))}

    def pue_of(provider):
        p = pue.get(provider)
        if p and p["pue"]:
            return p["pue"], f'{p["source"]}, {p["year"]}'
        return "", ""

    def place(grid, city):
        g = out[grid]
        return f"{city}, {g['location']}" if city and city not in g["location"] else g["location"]

    for r in rows_of(os.path.join(CC, "cloud/impact.csv")):
        region = r["region"].replace("me-cenrtal1", "me-central1")
        a2 = alpha2[r["countryIsoCode"]]
        grid = a2
        state = r["state"]
        for probe in (state, r["city"]):
            if probe in GCP_GRID:
                grid = GCP_GRID[probe]
        if a2 == "US" and grid == "US":
            grid = next(k for k, v in out.items() if v["kind"] == "subdivision" and v["name"] == state)
        p, ps = pue_of("gcp")
        add(dict(key=f"gcp:{region}", kind="cloud", provider="gcp", name=f"Google Cloud {region}",
                 location=place(grid, r["city"]), grid=grid, g_per_kwh=float(r["impact"]),
                 source=GOOGLE, year=2023, method=METHOD[GOOGLE], pue=p, pue_source=ps,
                 em_zone=out[grid]["em_zone"]))

    for r in rows_of(os.path.join(HERE, "inputs/cloud_regions.csv")):
        g = out[r["grid"]]
        p, ps = pue_of(r["provider"])
        label = pue[r["provider"]]["provider_name"]
        add(dict(key=f'{r["provider"]}:{r["region"]}', kind="cloud", provider=r["provider"],
                 name=f'{label} {r["name"]}', location=place(r["grid"], r["city"]),
                 grid=r["grid"], g_per_kwh=g["g_per_kwh"], source=f'{g["source"]} (grid {r["grid"]})',
                 year=g["year"], method=g["method"], pue=p, pue_source=ps, em_zone=g["em_zone"]))

    with open(os.path.join(HERE, "intensity.csv"), "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for row in out.values():
            w.writerow(row)
    kinds = {}
    for row in out.values():
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
    print(f"wrote {len(out)} rows: {kinds}", file=sys.stderr)


if __name__ == "__main__":
    main()
