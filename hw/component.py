"""The base class of the DRE's sub-components: one configuration, checked, then the ports."""

from amaranth.build import Platform
from amaranth.lib import wiring

from model.config import DREConfig

__all__ = ["check_config", "builds_for_fpga", "block_ram", "ConfiguredComponent"]


def check_config(config):
    """Raise ``TypeError`` unless ``config`` is a :class:`DREConfig`."""
    if not isinstance(config, DREConfig):
        raise TypeError(f"config must be a DREConfig, not {config!r}")


def builds_for_fpga(platform):
    """Whether ``elaborate`` builds for an FPGA: true for an Amaranth build platform
    (``platform.build`` passes itself to every ``elaborate``); false for ``None`` (RTLIL or
    Verilog without a platform: the silicon flow, the simulators, the generated Verilog)."""
    return isinstance(platform, Platform)


def poisons_undefined_reads(platform):
    """Whether a memory word that the hardware leaves undefined is given inverted: the word of a
    read at the address being written, on a port whose memory carries
    :data:`hw.wtu.read_ahead.NO_RW_CHECK`. A platform sets ``poison_undefined_reads`` to have
    it (the tests, which then check that no output depends on such a word); otherwise the
    simulator gives the old word and a block RAM any word."""
    return bool(getattr(platform, "poison_undefined_reads", False))


def block_ram(platform):
    """Attributes of a ``lib.memory.Memory`` that ask an FPGA build for block RAM
    (``ram_style`` "block", read by Yosys's memory mapping, which would otherwise put a small
    memory into LUT RAM); ``None`` without a platform, where the silicon flow chooses macros
    or flip-flops itself."""
    return {"ram_style": "block"} if builds_for_fpga(platform) else None


class ConfiguredComponent(wiring.Component):
    """A ``wiring.Component`` built for one :class:`DREConfig`.

    A subclass defines :meth:`_members`, its signature members computed from the configuration;
    the configuration is checked before they are.

    Parameters
    ----------
    config : DREConfig

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`DREConfig`.
    """

    def __init__(self, config):
        check_config(config)
        self._config = config
        super().__init__(self._members(config))

    @property
    def config(self):
        """The configuration the component was built for."""
        return self._config

    def _members(self, config):
        """The signature members (a dict of name to ``In``/``Out``) for ``config``."""
        raise NotImplementedError
