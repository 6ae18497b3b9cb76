"""The model factory's use cases, driven through fakes of every port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eurosat_service.domain.dataset import LabeledImage, fingerprint, stratified_split
from eurosat_service.domain.errors import DatasetError, EurosatError, StoreAccessError
from eurosat_service.domain.model_card import ModelCard, ModelRef, TrainingConfig
from eurosat_service.domain.ports import TrainedModel
from eurosat_service.service_layer.evaluation import evaluate_model
from eurosat_service.service_layer.training import train_and_publish
from tests.unit.fakes import FakeArtifactStore, FakeDatasetSource, FakeTrainer

COUNTS = {"Forest": 10, "River": 10, "SeaLake": 10}
CONFIG = TrainingConfig(epochs=2, batch_size=4, threads=1)
PUBLISHED = {"model.pt", "model_card.json", "evaluation.json", "confusion_matrix.json", "confusion_matrix.png",
             "split.json", "history.json"}


def fake_png(report, path: Path) -> None:
    path.write_bytes(b"\x89PNG fake")


def train(tmp_path: Path, store=None, trainer=None, source=None, config=CONFIG, teachers=(), version="v1"):
    return train_and_publish(
        source=source or FakeDatasetSource.with_counts(COUNTS), trainer=trainer or FakeTrainer(),
        store=store if store is not None else FakeArtifactStore(), config=config, workdir=tmp_path,
        render_confusion_matrix=fake_png, version=version, teachers=teachers,
    )


def test_train_and_publish_publishes_the_model_and_its_reports_then_latest(tmp_path):
    store, trainer = FakeArtifactStore(), FakeTrainer()
    run = train(tmp_path, store, trainer)
    assert {key.split("/", 1)[1] for key in store.objects} == PUBLISHED
    assert store.writes[-1] == "LATEST" and store.writes.count("LATEST") == 1
    assert store.latest_version() == "v1" and run.published.version == "v1"
    card = ModelCard.model_validate_json(store.objects["v1/model_card.json"])
    assert card == run.card and card.weights_sha256 and card.class_names == ("Forest", "River", "SeaLake")
    assert card.split.sha256["test"] == fingerprint(run.split.test)
    assert card.metrics["test_accuracy"] == 1.0 and card.metrics["best_val_accuracy"] == pytest.approx(0.6)
    evaluation = json.loads(store.objects["v1/evaluation.json"])
    assert evaluation["split"] == "test" and evaluation["num_images"] == len(run.split.test) == 3
    listing = json.loads(store.objects["v1/split.json"])["files"]
    assert sorted(listing["test"]) == sorted(i.path for i in run.split.test)


def test_the_trainer_never_sees_the_test_images(tmp_path):
    trainer = FakeTrainer()
    run = train(tmp_path, trainer=trainer)
    (seen_train, seen_val), = trainer.trained_on
    assert not set(seen_train + seen_val) & set(run.split.test)
    assert trainer.predicted == list(run.split.test)


def test_a_failed_upload_leaves_no_latest_pointer(tmp_path):
    store = FakeArtifactStore(fail_on="evaluation.json")
    with pytest.raises(StoreAccessError):
        train(tmp_path, store)
    assert "LATEST" not in store.writes and store.latest is None


def test_an_unreachable_or_read_only_store_fails_before_training(tmp_path):
    class RefusingStore(FakeArtifactStore):
        def check_writable(self):
            raise StoreAccessError("cannot publish to /models: writing to /models failed (Permission denied)")

    trainer = FakeTrainer()
    with pytest.raises(StoreAccessError):
        train(tmp_path, RefusingStore(), trainer)
    assert trainer.trained_on == []


def test_a_single_class_is_refused(tmp_path):
    with pytest.raises(DatasetError, match="two classes"):
        train(tmp_path, source=FakeDatasetSource.with_counts({"Forest": 5}))


def test_a_class_too_small_to_hold_out_is_named_before_training(tmp_path):
    trainer, store = FakeTrainer(), FakeArtifactStore()
    with pytest.raises(DatasetError, match=r"class\(es\) River \(2 images\), SeaLake \(1 image\) have too few images "
                                           "to hold any out for val and test: each class needs at least 3"):
        train(tmp_path, store, trainer, source=FakeDatasetSource.with_counts({"Forest": 10, "River": 2, "SeaLake": 1}))
    assert trainer.trained_on == [] and store.writes == []


def test_split_fractions_without_a_test_part_are_refused_before_training(tmp_path):
    trainer = FakeTrainer()
    with pytest.raises(DatasetError, match=r"give the test part no images"):
        train(tmp_path, trainer=trainer, config=CONFIG.model_copy(update={"split_fractions": (0.9, 0.1, 0.0)}))
    assert trainer.trained_on == []


# -- self-distillation ---------------------------------------------------------------------------
def published_teacher(tmp_path: Path, trainer: FakeTrainer, version: str, config=CONFIG) -> TrainedModel:
    store = FakeArtifactStore()
    train(tmp_path / version, store, trainer, config=config, version=version)
    return FakeTrainer().load(store.fetch(tmp_path / f"{version}-cache"))


@pytest.fixture
def teacher(tmp_path) -> TrainedModel:
    return published_teacher(tmp_path, FakeTrainer(), "v1")


def test_a_distilled_model_records_its_teacher_and_counts_its_training_time(tmp_path, teacher):
    trainer = FakeTrainer()
    run = train(tmp_path, trainer=trainer, teachers=[teacher], version="v2")
    assert trainer.teachers == [[teacher]]
    assert run.card.training.teacher_version == "v1"
    assert run.card.training.teacher_weights_sha256 == teacher.card.weights_sha256
    assert run.card.training.co_teachers == ()
    assert run.card.training_seconds == 1.5 + teacher.seconds


def test_an_ensemble_of_teachers_is_recorded_in_order_and_all_their_time_counts(tmp_path, teacher):
    other = published_teacher(tmp_path, FakeTrainer(wrong={"Forest/Forest_1.jpg": "River"}), "v1b")
    other = TrainedModel(other.network, other.architecture, other.class_names, [], 40.0, other.card)
    trainer = FakeTrainer()
    run = train(tmp_path, trainer=trainer, teachers=[teacher, other], version="v2")
    assert trainer.teachers == [[teacher, other]]
    assert run.card.training.teacher_version == "v1"  # the student starts from the first one's weights
    assert run.card.training.co_teachers == (ModelRef(version="v1b", weights_sha256=other.card.weights_sha256),)
    assert other.card.weights_sha256 != teacher.card.weights_sha256
    assert run.card.training_seconds == 1.5 + teacher.seconds + 40.0


def test_the_same_teacher_twice_is_refused(tmp_path, teacher):
    trainer = FakeTrainer()
    with pytest.raises(EurosatError, match="the same teacher is given twice"):
        train(tmp_path, trainer=trainer, teachers=[teacher, teacher])
    assert trainer.trained_on == []


@pytest.mark.parametrize("change, error", [
    ({"seed": 7}, "trained on another split"),
    ({"split_fractions": (0.6, 0.2, 0.2)}, "trained on another split"),
    ({"architecture": "resnet18"}, "use --architecture resnet18-nopool-w32"),
    ({"pretrained": True}, "pick one"),
])
def test_a_teacher_that_does_not_fit_the_run_is_refused_before_training(tmp_path, teacher, change, error):
    trainer = FakeTrainer()
    with pytest.raises(EurosatError, match=error):
        train(tmp_path, trainer=trainer, config=CONFIG.model_copy(update=change), teachers=[teacher])
    assert trainer.trained_on == []


def test_a_second_teacher_of_another_split_is_refused_too(tmp_path, teacher):
    other = published_teacher(tmp_path, FakeTrainer(), "v7", config=CONFIG.model_copy(update={"seed": 7}))
    trainer = FakeTrainer()
    with pytest.raises(DatasetError, match="the teacher v7 was trained on another split"):
        train(tmp_path, trainer=trainer, teachers=[teacher, other])
    assert trainer.trained_on == []


# -- evaluate -----------------------------------------------------------------------------------
@pytest.fixture
def model_file(tmp_path) -> Path:
    store = FakeArtifactStore()
    train(tmp_path / "work", store)
    return store.fetch(tmp_path / "cache")


def test_evaluate_scores_every_image_with_the_cards_classes(model_file):
    source = FakeDatasetSource.with_counts({"Forest": 2, "SeaLake": 2})
    trainer = FakeTrainer(wrong={"Forest/Forest_1.jpg": "River"})
    result = evaluate_model(source, trainer, model_file)
    report = result.report
    assert report.class_names == ("Forest", "River", "SeaLake") and report.num_images == 4
    assert report.accuracy == 0.75 and report.confusion_matrix == [[1, 1, 0], [0, 0, 0], [0, 0, 2]]
    assert report.per_class["River"].support == 0 and report.per_class["Forest"].recall == 0.5
    assert report.model_version == "v1" and report.split == "all"
    assert result.per_image is None


def test_evaluate_reports_per_image_probabilities(model_file):
    source = FakeDatasetSource.with_counts({"River": 1})
    result = evaluate_model(source, FakeTrainer(), model_file, per_image=True)
    assert result.per_image == {"River/River_1.jpg": {"Forest": 0.0, "River": 1.0, "SeaLake": 0.0}}


def test_evaluate_scores_with_the_views_asked_for_and_says_so_in_the_report(model_file):
    source = FakeDatasetSource.with_counts({"River": 2})
    trainer = FakeTrainer()
    assert evaluate_model(source, trainer, model_file).report.views == 1 and trainer.views == 1
    assert evaluate_model(source, trainer, model_file, views=8).report.views == 8 and trainer.views == 8


def test_evaluate_names_the_split_when_the_images_are_the_models_test_set(model_file):
    images = FakeDatasetSource.with_counts(COUNTS).list_images()
    test = stratified_split(images, CONFIG.split_fractions, CONFIG.seed).test
    assert evaluate_model(FakeDatasetSource(test), FakeTrainer(), model_file).report.split == "test"


def test_evaluate_can_score_only_the_models_own_test_part_of_its_training_folder(model_file):
    images = FakeDatasetSource.with_counts(COUNTS).list_images()
    test = stratified_split(images, CONFIG.split_fractions, CONFIG.seed).test
    trainer = FakeTrainer()
    report = evaluate_model(FakeDatasetSource(images), trainer, model_file, part="test").report
    assert report.split == "test" and report.num_images == len(test) and trainer.predicted == list(test)


def test_evaluate_refuses_a_split_part_from_another_folder(model_file):
    images = FakeDatasetSource.with_counts(COUNTS).list_images()
    other = FakeDatasetSource([LabeledImage(f"{i.label}/other_{n}.jpg", i.label) for n, i in enumerate(images)])
    with pytest.raises(DatasetError, match="not the ones this model's split was drawn from"):
        evaluate_model(other, FakeTrainer(), model_file, part="test")


def test_evaluate_refuses_class_folders_the_model_does_not_know(model_file):
    source = FakeDatasetSource([LabeledImage("Forest/a.jpg", "Forest"), LabeledImage("Glacier/b.jpg", "Glacier")])
    with pytest.raises(DatasetError, match="Glacier.*not classes of this model"):
        evaluate_model(source, FakeTrainer(), model_file)


def test_evaluate_refuses_an_empty_collection(model_file):
    with pytest.raises(DatasetError, match="no images"):
        evaluate_model(FakeDatasetSource([]), FakeTrainer(), model_file)
