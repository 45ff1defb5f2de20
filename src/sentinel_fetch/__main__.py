"""``python -m sentinel_fetch``: the same as the ``sentinel-fetch`` command."""

from sentinel_fetch.cli import main

if __name__ == "__main__":
    main()
