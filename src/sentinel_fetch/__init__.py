"""sentinel-fetch: batch search and download of Copernicus Sentinel data from CDSE."""

__version__ = "0.1.0"
