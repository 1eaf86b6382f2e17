"""The base class of the DRE's sub-components: one configuration, checked, then the ports."""

from amaranth.lib import wiring

from model.config import DREConfig

__all__ = ["check_config", "ConfiguredComponent"]


def check_config(config):
    """Raise ``TypeError`` unless ``config`` is a :class:`DREConfig`."""
    if not isinstance(config, DREConfig):
        raise TypeError(f"config must be a DREConfig, not {config!r}")


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
