#!/usr/bin/env python3
"""Builds `intensity.csv`, cardfill's grid carbon intensity table, from public data.

Usage: python3 build_table.py [CARBON_DATA_DIR]   (default: /work/shared/carbon-data)

Inputs (see SOURCES.md for licences):
- Our World in Data `carbon_intensity_elec` per country (via CodeCarbon's global_energy_mix.json),
  alpha-3 -> alpha-2 from carbontracker's carbon-intensities.csv and eco2AI's carbon_index.csv
  (codes only, no values);
- US EPA eGRID2016 state CO2 output rates (via CodeCarbon's usa_emissions.json, lbs/MWh);
- Canadian provincial generation shares 2023 (CodeCarbon's canada_energy_mix.json) with
  CodeCarbon's fossil emission factors;
- Google Cloud region carbon data (via CodeCarbon's cloud/impact.csv);
- inputs/cloud_regions.csv (region -> city and grid, curated) and pue.csv (provider PUE, also embedded).

Every output row has a source and a year. Cloud regions other than Google's take the intensity
of the grid they sit on. Re-run after editing the inputs; the tests read the committed output.
"""
import csv
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = sys.argv[1] if len(sys.argv) > 1 else "/work/shared/carbon-data"
CC = os.path.join(DATA, "codecarbon/codecarbon/data")

OWID = "Our World in Data (Ember, Energy Institute)"
EGRID = "US EPA eGRID2016 state CO2 rate"
CANADA = "CodeCarbon Canada mix x fossil factors"
GOOGLE = "Google Cloud region carbon data"
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
           "pue", "pue_source", "em_zone"]


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

    states = json.load(open(os.path.join(CC, "private_infra/2016/usa_emissions.json")))
    for name, s in sorted(states.items()):
        if name in ("usa", "_unit"):
            continue
        key = "US-" + s["regionCode"]
        title = name.title().replace(" Of ", " of ")
        add(dict(key=key, kind="subdivision", provider="", name=title,
                 location=f"{title}, United States", grid=key,
                 g_per_kwh=round(s["emissions"] * LBS_PER_MWH_TO_G_PER_KWH, 1), source=EGRID,
                 year=2016, pue="", pue_source="", em_zone=EM_ZONES.get(key, "")))

    ca = json.load(open(os.path.join(CC, "private_infra/2023/canada_energy_mix.json")))
    for name, m in sorted(ca.items()):
        key = "CA-" + CA_PROVINCES[name]
        g = (m["coal"] * 995.7 + m["petroleum"] * 816.7 + m["naturalGas"] * 743.8) / 100
        title = name.title().replace(" And ", " and ")
        add(dict(key=key, kind="subdivision", provider="", name=title,
                 location=f"{title}, Canada", grid=key, g_per_kwh=round(max(g, 0.1), 1),
                 source=CANADA, year=2023, pue="", pue_source="", em_zone=EM_ZONES.get(key, "")))

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
                 source=GOOGLE, year=2023, pue=p, pue_source=ps,
                 em_zone=out[grid]["em_zone"]))

    for r in rows_of(os.path.join(HERE, "inputs/cloud_regions.csv")):
        g = out[r["grid"]]
        p, ps = pue_of(r["provider"])
        label = pue[r["provider"]]["provider_name"]
        add(dict(key=f'{r["provider"]}:{r["region"]}', kind="cloud", provider=r["provider"],
                 name=f'{label} {r["name"]}', location=place(r["grid"], r["city"]),
                 grid=r["grid"], g_per_kwh=g["g_per_kwh"], source=f'{g["source"]} (grid {r["grid"]})',
                 year=g["year"], pue=p, pue_source=ps, em_zone=g["em_zone"]))

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
