"""Old home of the AugLab config importer, kept so that ``spineaug.compat`` imports keep working.

The importer lives in :mod:`spineaug.integrations.auglab`; import from there in new code.
"""

from spineaug.integrations.auglab import (
    AugLabWarning,
    NoEffectWarning,
    NotTranslatedWarning,
    auglab_to_config,
    from_auglab,
)

__all__ = ["AugLabWarning", "NoEffectWarning", "NotTranslatedWarning", "auglab_to_config", "from_auglab"]
