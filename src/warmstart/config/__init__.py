"""Typed configs for every command, loaded from YAML recipes plus overrides (loader.py), one module per command.

Everything public is re-exported here, so `from warmstart.config import PretrainConfig, load_config` is the
one import users and the rest of the package need.
"""

from warmstart.config.finetune import (
    FinetuneConfig,
    FinetuneTrainConfig,
    ForgettingConfig,
    LabelledDataConfig,
    TextTrainConfig,
)
from warmstart.config.images import (
    IMAGE_OBJECTIVES,
    AugmentConfig,
    ImageDataConfig,
    ImageFinetuneConfig,
    ImageFinetuneTrainConfig,
    ImageForgettingConfig,
    ImageModelConfig,
    ImageObjectiveConfig,
    ImagePretrainConfig,
    ImageTrainConfig,
)
from warmstart.config.loader import (
    CONFIG_FILENAME,
    finished_with,
    from_dict,
    load_config,
    peek,
    read_saved,
    recipe_path,
    save_config,
)
from warmstart.config.pretrain import (
    SENTENCE_OBJECTIVES,
    CorpusConfig,
    ModelConfig,
    ObjectiveConfig,
    PretrainConfig,
    TokenizerConfig,
    TrainConfig,
)
from warmstart.config.schema import knob, plain_name, validate
from warmstart.config.strategies import (
    SGD_STRATEGIES,
    STRATEGIES,
    TEXT_ONLY,
    FreezeConfig,
    GradualUnfreezeConfig,
    L2spConfig,
    LlrdConfig,
    LoraConfig,
    SetFitConfig,
    StrategySections,
)
from warmstart.config.study import PretrainSpec, StudyConfig, TaskSpec

__all__ = [
    "AugmentConfig", "CONFIG_FILENAME", "CorpusConfig", "FinetuneConfig", "FinetuneTrainConfig", "ForgettingConfig",
    "FreezeConfig", "GradualUnfreezeConfig", "IMAGE_OBJECTIVES", "ImageDataConfig", "ImageFinetuneConfig",
    "ImageFinetuneTrainConfig", "ImageForgettingConfig", "ImageModelConfig", "ImageObjectiveConfig",
    "ImagePretrainConfig", "L2spConfig", "LabelledDataConfig", "LlrdConfig", "LoraConfig", "ModelConfig",
    "ObjectiveConfig", "PretrainConfig", "PretrainSpec", "SENTENCE_OBJECTIVES", "SetFitConfig", "StrategySections", "StudyConfig", "TaskSpec",
    "TokenizerConfig", "TrainConfig", "finished_with", "from_dict", "load_config", "save_config",
    "ImageTrainConfig", "TextTrainConfig", "STRATEGIES", "SGD_STRATEGIES", "TEXT_ONLY", "knob", "peek", "plain_name", "read_saved",
    "validate", "recipe_path",
]
