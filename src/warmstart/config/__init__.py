"""Typed configs for every command, loaded from YAML recipes plus overrides (loader.py), one module per command.

Everything public is re-exported here, so `from warmstart.config import PretrainConfig, load_config` is the
one import users and the rest of the package need.
"""

from warmstart.config.finetune import (
    TASKS,
    FinetuneConfig,
    FinetuneTrainConfig,
    ForgettingConfig,
    LabelledDataConfig,
)
from warmstart.config.images import (
    AugmentConfig,
    ImageDataConfig,
    ImageFinetuneConfig,
    ImageFinetuneTrainConfig,
    ImageForgettingConfig,
    ImageModelConfig,
    ImageObjectiveConfig,
    ImagePretrainConfig,
)
from warmstart.config.loader import (
    CONFIG_FILENAME,
    IMAGE_OBJECTIVES,
    finished_with,
    from_dict,
    is_image_recipe,
    load_config,
    save_config,
)
from warmstart.config.pretrain import (
    CorpusConfig,
    ModelConfig,
    ObjectiveConfig,
    PretrainConfig,
    TokenizerConfig,
    TrainConfig,
)
from warmstart.config.strategies import (
    FreezeConfig,
    GradualUnfreezeConfig,
    L2spConfig,
    LlrdConfig,
    LoraConfig,
    StrategySections,
)
from warmstart.config.study import PretrainSpec, StudyConfig, TaskSpec

__all__ = [
    "AugmentConfig", "CONFIG_FILENAME", "CorpusConfig", "FinetuneConfig", "FinetuneTrainConfig", "ForgettingConfig",
    "FreezeConfig", "GradualUnfreezeConfig", "IMAGE_OBJECTIVES", "ImageDataConfig", "ImageFinetuneConfig",
    "ImageFinetuneTrainConfig", "ImageForgettingConfig", "ImageModelConfig", "ImageObjectiveConfig",
    "ImagePretrainConfig", "L2spConfig", "LabelledDataConfig", "LlrdConfig", "LoraConfig", "ModelConfig",
    "ObjectiveConfig", "PretrainConfig", "PretrainSpec", "StrategySections", "StudyConfig", "TASKS", "TaskSpec",
    "TokenizerConfig", "TrainConfig", "finished_with", "from_dict", "is_image_recipe", "load_config", "save_config",
]
