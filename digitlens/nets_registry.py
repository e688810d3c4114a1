"""Names of the trainable architectures, importable without torch (for `--help` and the CLI's choices)."""
ARCH_NAMES = ("lens", "seed")  # see digitlens.nets.ARCHS
DEFAULT_ARCH = "lens"
