"""``python -m libtlt.demo``."""

from libtlt.demo import main

main()
