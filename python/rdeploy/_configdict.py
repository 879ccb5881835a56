"""mmengine-style attribute access on config sections (``cfg.backend_config.type``)."""


class ConfigDict(dict):
    """A dict whose keys are also attributes, nested (mmengine's ``ConfigDict`` reading side)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for k, v in self.items():
            self[k] = _wrap(v)

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'") from None


def _wrap(v):
    if isinstance(v, dict) and not isinstance(v, ConfigDict):
        return ConfigDict(v)
    if isinstance(v, list):
        return [_wrap(x) for x in v]
    return v
