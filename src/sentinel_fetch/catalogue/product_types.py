"""Product types the catalogue is known to hold, for "did you mean" (cdse-api.md §8.2).

CDSE has no endpoint that lists product types, and a ``productType`` filter that matches
nothing returns 0 products without a word (``-t MSIL2A`` for ``S2MSI2A``). The table
below is the documented selection; a type outside it is not refused (the catalogue has
more than we list), only pointed out, with the closest known types.
"""

from __future__ import annotations

import difflib

__all__ = ["KNOWN_PRODUCT_TYPES", "suggest_product_types"]

_S1_MODES = ("IW", "EW", "WV", "S1", "S2", "S3", "S4", "S5", "S6")
KNOWN_PRODUCT_TYPES: frozenset[str] = frozenset(
    {
        # Sentinel-2, and the aliases the options accept.
        "S2MSI1C",
        "S2MSI2A",
        "MSI_L1B_GR",
        "MSI_L1B_DS",
        "L1C",
        "L2A",
        # Sentinel-1 (and the catalogue's own family aliases, §3.5).
        *(f"{mode}_{kind}" for mode in _S1_MODES for kind in ("GRDH_1S", "GRDM_1S", "GRDF_1S")),
        *(f"{mode}_GRDH_1S-COG" for mode in _S1_MODES),
        *(f"{mode}_GRDM_1S-COG" for mode in _S1_MODES),
        *(f"{mode}_{kind}" for mode in _S1_MODES for kind in ("SLC__1S", "RAW__0S", "OCN__2S")),
        "IW_ETA__AX",
        "GRD",
        "SLC",
        "RAW",
        "OCN",
        "GRD-COG",
        "AUX_POEORB",
        "AUX_RESORB",
        "AUX_PREORB",
        "AUX_MOEORB",
        "AUX_GNSSRD",
        "AUX_PROQUA",
        "AUX_INS",
        "AUX_ML2",
        # Sentinel-3 (names padded to 11 characters).
        "OL_1_EFR___",
        "OL_1_ERR___",
        "OL_2_LFR___",
        "OL_2_LRR___",
        "OL_2_WFR___",
        "OL_2_WRR___",
        "SL_1_RBT___",
        "SL_2_LST___",
        "SL_2_WST___",
        "SL_2_AOD___",
        "SL_2_FRP___",
        "SY_2_SYN___",
        "SY_2_V10___",
        "SY_2_VG1___",
        "SY_2_VGP___",
        "SY_2_AOD___",
        "SR_1_SRA___",
        "SR_1_SRA_A_",
        "SR_1_SRA_BS",
        "SR_2_LAN___",
        "SR_2_WAT___",
        # Sentinel-5P (padded to 10).
        *(f"L1B_RA_BD{band}" for band in range(1, 9)),
        "L1B_IR_SIR",
        "L1B_IR_UVN",
        "L2__NO2___",
        "L2__O3____",
        "L2__CO____",
        "L2__CH4___",
        "L2__SO2___",
        "L2__HCHO__",
        "L2__CLOUD_",
        "L2__AER_AI",
        "L2__AER_LH",
        "L2__O3__PR",
        "L2__O3_TCL",
        "L2__NP_BD3",
        "L2__NP_BD6",
        "L2__NP_BD7",
    }
)
_BY_KEY = {name.upper().replace("_", ""): name for name in KNOWN_PRODUCT_TYPES}


def suggest_product_types(value: str) -> list[str] | None:
    """``None`` for a known type, else the closest known types (possibly none).

    Underscores and case are ignored when comparing, since they are what people get
    wrong (``L2_NO2``, ``iw_grdh_1s``); the part after the mission prefix counts too
    (``MSIL2A`` is ``S2MSI2A`` without its ``S2``).

    >>> suggest_product_types("S2MSI2A") is None
    True
    >>> suggest_product_types("MSIL2A")
    ['S2MSI2A']
    >>> suggest_product_types("L2_NO2")
    ['L2__NO2___']
    """
    if value in KNOWN_PRODUCT_TYPES or value.upper() in KNOWN_PRODUCT_TYPES:
        return None
    key = value.upper().replace("_", "")
    exact = _BY_KEY.get(key)
    if exact is not None:
        return [exact]
    # "MSIL2A" / "MSIL1C": the browser's name part for the S2 levels.
    level = {"MSIL2A": "S2MSI2A", "MSIL1C": "S2MSI1C"}.get(key)
    if level is not None:
        return [level]
    close = difflib.get_close_matches(key, list(_BY_KEY), n=3, cutoff=0.6)
    return [_BY_KEY[match] for match in close]
