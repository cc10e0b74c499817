"""`python -m workbay.client.cli_entry` = the `workbay` console script (tests use the venv's python)."""

from workbay.client.cli import main

if __name__ == "__main__":
    main()
