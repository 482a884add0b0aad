"""Training infrastructure: trainers, checkpoints, early stopping, schedules and run set-up."""

from runner.training.base_trainer import BaseTrainer
from runner.training.checkpoint import CheckpointManager, load_checkpoint, load_model
from runner.training.early_stopping import EarlyStopping
from runner.training.guards import NonFiniteLossError, OutOfMemory, TrainingInterrupted
from runner.training.ocr_trainer import OCRTrainer
from runner.training.utils import setup_training_environment

__all__ = ["BaseTrainer", "OCRTrainer", "CheckpointManager", "EarlyStopping", "NonFiniteLossError", "OutOfMemory",
           "TrainingInterrupted", "load_checkpoint", "load_model", "setup_training_environment"]
