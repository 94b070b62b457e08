"""`python -m mltk` (and so `torchrun -m mltk ...`) runs the same command line as `mltk`."""

from mltk.cli import main

if __name__ == "__main__":
    main()
