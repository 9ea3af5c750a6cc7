"""`python -m spectrum_cli ...`, and so `torchrun ... -m spectrum_cli batch ...`: the `spectrum` command."""

from .main import main

if __name__ == "__main__":
    main()
