"""The paper's experiments as data (vtsnn.experiments): cells, subsets, shards and overrides.

Checked without training; running them is test_reproduce.py's.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from vtsnn import experiments, reproduce
from vtsnn.experiments import (EXPERIMENTS, cells, parse_overrides, parse_shard, parse_subset, shard_cells,
                               without_seed_part)


def by_id(name: str) -> dict:
    return {cell.cell_id: cell for cell in cells(name)}


# ------------------------------------------------------------------------- the cells

def test_every_experiment_has_its_cells():
    counts = {name: len(cells(name)) for name in EXPERIMENTS}
    assert counts == {"table1": 24, "table2": 13, "fig5": 4, "fig6": 20, "fig7": len(experiments.FIG7_THRESHOLDS),
                      "energy": 1, "seeds": 3, "table2-seeds": 39, "mpd-order": 12, "ann-ceiling": 12, "noise-scale": 4,
                      "training-rules": 3, "output-threshold": 6, "learning-rate": 15, "lif-tau": 6,
                      "lif-init": 6, "weight-average": 10, "lr-and-average": 20,
                      "long-training": 5, "plane-weights": 6,
                      "decoded-loss": 6, "joint-losses": 4, "residual-targets": 17,
                      "recipe-parts": 4, "full-precision": 5, "lif-rate": 4,
                      "residual-tau": 13, "tau-gain": 6, "distill": 9, "if-gain": 2,
                      "taught-fp32": 3, "batch-size": 6, "mid-epoch": 4,
                      "batch-rate": 2, "flip": 4, "dense-checks": 4,
                      "flip-epochs": 2, "flip-batch": 4, "flip-seeds": 3, "flip-batch-epochs": 2,
                      "flip-small-batch": 3, "flip-shift": 3, "flip-batch-restart": 7,
                      "flip-average": 3, "flip-decay": 3, "flip-small-rate": 4,
                      "flip-lif-tau": 4, "flip-lif-small-rate": 5, "flip-clip": 3,
                      "flip-raw": 5, "flip-jitter": 5,
                      "flip-jitter-small-rate": 4, "flip-wide-jitter": 3,
                      "flip-jitter-epochs": 5}
    assert len(cells("all")) == sum(counts.values())
    for name in EXPERIMENTS:
        ids = [cell.cell_id for cell in cells(name)]
        assert len(set(ids)) == len(ids), name


def test_table1_cells_carry_the_papers_numbers():
    table1 = by_id("table1")
    assert table1["mnist-if-0.2"].paper == 23.57
    assert table1["mnist-if-0.8"].paper == 22.56
    assert table1["fashion_mnist-if-0.6"].paper == 20.64
    assert table1["cifar10-if-0.4"].paper == 14.08
    assert table1["mnist-lif-0.6"].paper == 19.04
    assert table1["cifar10-lif-0.8"].paper == 9.47
    for cell in table1.values():
        c = cell.config
        assert (c.training, c.encoder, c.decoder, c.loss) == ("itbp", "uwe", "uwd", "bitplane")
        assert (c.dataset, c.neuron, c.noise) == (cell.labels["dataset"], cell.labels["neuron"], cell.labels["noise"])
        assert c.epochs == experiments.DEFAULT_EPOCHS and not c.color


def test_table2_has_both_itbp_readings_and_the_ann():
    table2 = by_id("table2")
    expected = {"uwe-uwd-stbp": 9.60, "uwe-mpd-stbp": 8.00, "ttfs-uwd-stbp": 8.54, "ttfs-mpd-stbp": 9.76,
                "uwe-uwd-itbp": 23.57, "uwe-mpd-itbp": 11.91, "ttfs-uwd-itbp": 11.81, "ttfs-mpd-itbp": 20.70}
    for row, paper in expected.items():
        if row.endswith("stbp"):
            cell = table2[row]
            assert cell.paper == paper and cell.config.training == "stbp" and cell.config.temporal_grad
            continue
        detached, through_time = table2[f"{row}-detached"], table2[f"{row}-through-time"]
        assert detached.paper == through_time.paper == paper
        assert detached.config.temporal_grad is False and through_time.config.temporal_grad is True
        assert detached.config.loss == through_time.config.loss == "bitplane"
    for cell in table2.values():
        encoder, _, rest = cell.cell_id.partition("-")
        if cell.cell_id != "ann":
            assert (cell.config.encoder, cell.config.decoder) == (encoder, rest.split("-")[0])
        assert (cell.config.dataset, cell.config.noise, cell.config.neuron) == ("mnist", 0.2, "if")
    assert table2["ann"].config.training == "ann" and table2["ann"].paper == 23.05


def test_fig6_grid_and_its_two_paper_points():
    fig6 = by_id("fig6")
    assert {(c.config.steps, c.config.noise) for c in fig6.values()} == {
        (t, eta) for t in (2, 4, 6, 8) for eta in (0.0, 0.2, 0.4, 0.6, 0.8)}
    assert fig6["t8-eta0"].paper == 0.992 and fig6["t2-eta0.8"].paper == 0.852
    assert sum(c.paper is not None for c in fig6.values()) == 2


def test_fig7_sweeps_around_the_papers_threshold():
    thresholds = sorted(c.config.output_threshold for c in cells("fig7"))
    assert 0.077 in thresholds and 0.1 in thresholds
    assert thresholds[0] < 0.077 < thresholds[-1]


def test_cells_with_one_configuration_share_one_run():
    everything = cells("all")
    shared = [c for c in everything if c.run_name == "table1/mnist-if-0.2"]
    assert sorted(f"{c.experiment}/{c.cell_id}" for c in shared) == [
        "energy/mnist-if-0.2", "fig5/mnist-if-0.2", "fig7/threshold-0.077", "seeds/mnist-if-0.2-seed0",
        "table1/mnist-if-0.2", "table2-seeds/uwe-uwd-itbp-through-time-seed0", "table2/uwe-uwd-itbp-through-time"]
    assert all(c.config == shared[0].config for c in shared)
    runs = {}
    for cell in everything:       # different configurations never share a folder
        assert runs.setdefault(cell.run_name, cell.config) == cell.config


def test_each_listing_gives_cells_of_its_own_that_a_caller_may_change():
    # The cells are built once per process; what one caller does to them reaches no other.
    first = cells("table1", epochs=1, overrides={"train_limit": 10})
    first[0].labels["changed"] = True
    first[0].run_name = "elsewhere"
    again = cells("table1")
    assert again[0].config.epochs != 1 and again[0].config.train_limit != 10
    assert "changed" not in again[0].labels and again[0].run_name == "table1/mnist-if-0.2"
    assert again == cells("table1")


# ----------------------------------------------------------------- subsets and shards

def test_subset_filters_cells():
    assert {c.cell_id for c in cells("table1", subset="dataset=mnist,neuron=if")} == {
        "mnist-if-0.2", "mnist-if-0.4", "mnist-if-0.6", "mnist-if-0.8"}
    assert len(cells("table1", subset="noise=0.2,noise=0.4")) == 12      # a repeated key: either value
    assert [c.cell_id for c in cells("table2", subset="id=ann")] == ["ann"]
    assert len(cells("table2", subset="reading=detached")) == 4
    assert len(cells("fig6", subset="steps=8")) == 5
    assert parse_subset("a=1, b=x,a=2") == {"a": ["1", "2"], "b": ["x"]}
    with pytest.raises(ValueError, match="unknown subset key"):
        cells("table1", subset="colour=red")
    with pytest.raises(ValueError, match="no cell of table1 matches the subset 'id=mnist-if-0.3'"):
        cells("table1", subset="id=mnist-if-0.3")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_subset("mnist")


@pytest.mark.parametrize("name", ["table1", "all"])
def test_shards_are_disjoint_and_cover_every_cell(name):
    everything = cells(name)
    keys = lambda selected: [(c.experiment, c.cell_id) for c in selected]   # noqa: E731
    for count in (1, 2, 3, 7):
        parts = [keys(shard_cells(everything, (index, count))) for index in range(count)]
        flat = [key for part in parts for key in part]
        assert sorted(flat) == sorted(keys(everything)) and len(set(flat)) == len(flat)
        runs = [{c.run_name for c in shard_cells(everything, (i, count))} for i in range(count)]
        assert sum(len(r) for r in runs) == len(set().union(*runs))       # a shared run is in one shard
    assert parse_shard("1/4") == (1, 4)
    for bad in ("4/4", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(ValueError, match="I/N"):
            parse_shard(bad)


def test_epochs_and_overrides_reach_every_config():
    overrides = parse_overrides(["channels=4,8", "train_limit=32", "precision=bf16", "test_limit=none"])
    assert overrides == {"channels": (4, 8), "train_limit": 32, "precision": "bf16", "test_limit": None}
    with pytest.raises(ValueError, match="one KEY=VALUE per --override"):
        parse_overrides(["train_limit=300,test_limit=50"])
    selected = cells("table2", epochs=2, overrides=overrides)
    assert all(c.config.channels == (4, 8) and c.config.epochs == 2 and c.config.precision == "bf16"
               for c in selected)
    mixed = cells("all", overrides={"channels": (4, 8), "train_limit": 32})    # fig6 has no channels: skipped there
    assert all(c.config.train_limit == 32 for c in mixed)
    with pytest.raises(ValueError, match="unknown override"):
        cells("table1", overrides={"colour": 1})
    with pytest.raises(ValueError, match="steps"):
        cells("fig6", overrides={"steps": 9})
    # A list where one number belongs is refused when the cells are built, not mid-run.
    with pytest.raises(ValueError, match=r"train_limit must be int or None, got \(3, 4\)"):
        cells("table1", overrides=parse_overrides(["train_limit=3,4"]))


def test_as_recorded_gives_each_cell_the_configuration_and_epochs_its_result_records(tmp_path):
    (tmp_path / "table1").mkdir()
    defaults = by_id("table1")
    recorded = dataclasses.replace(defaults["fashion_mnist-if-0.8"].config, val_size=5000, epochs=7)
    record = {"config": recorded.to_dict(), "epochs": 3}      # the run was stopped after 3 of 7 epochs
    (tmp_path / "table1" / "fashion_mnist-if-0.8.json").write_text(json.dumps(record))
    selected = {cell.cell_id: cell for cell in cells("table1", recorded_in=tmp_path)}
    assert selected["fashion_mnist-if-0.8"].config == dataclasses.replace(recorded, epochs=3)
    assert selected["mnist-if-0.2"].config == defaults["mnist-if-0.2"].config      # no result: the defaults
    assert selected["fashion_mnist-if-0.8"].run_name == defaults["fashion_mnist-if-0.8"].run_name
    for options in ({"epochs": 2}, {"overrides": {"val_size": 10}}):
        with pytest.raises(ValueError, match="--as-recorded"):
            cells("table1", recorded_in=tmp_path, **options)
    # The command recorded with the results says so when no command line is given.
    assert reproduce.reproduce_command("table1", subset="id=mnist-if-0.2", as_recorded=True) == \
        "vtsnn reproduce table1 --subset id=mnist-if-0.2 --as-recorded"


def test_seed_cells_differ_only_in_the_seed_and_seed_0_is_table1s_run():
    seeds = cells("seeds")
    assert [cell.config.seed for cell in seeds] == [0, 1, 2]
    reference = by_id("table1")["mnist-if-0.2"].config
    for cell in seeds:
        assert cell.config == dataclasses.replace(reference, seed=cell.config.seed)
        assert cell.paper == 23.57
    assert seeds[0].run_name == "table1/mnist-if-0.2"
    assert len({cell.run_name for cell in seeds}) == 3


def test_table2_seed_cells_repeat_table2_with_three_seeds_seed_major():
    table2 = cells("table2")
    repeated = cells("table2-seeds")
    assert len(repeated) == 3 * len(table2)
    for position, cell in enumerate(repeated):
        original = table2[position % len(table2)]
        seed = position // len(table2)
        assert cell.cell_id == f"{original.cell_id}-seed{seed}" and cell.labels["seed"] == seed
        assert cell.config == dataclasses.replace(original.config, seed=seed) and cell.paper == original.paper
    seed0 = repeated[:len(table2)]
    assert [cell.run_name for cell in seed0] == [cell.run_name for cell in table2]   # no second training
    assert by_id("table2-seeds")["uwe-uwd-itbp-through-time-seed1"].run_name == "seeds/mnist-if-0.2-seed1"


def test_mpd_order_cells_change_only_the_decoder_of_table2s_mpd_cells_and_repeat_them_with_three_seeds():
    table2 = by_id("table2")
    seeds = []
    for cell in cells("mpd-order"):
        seed = cell.labels.get("seed", 0)
        seeds.append(seed)
        original = table2[cell.cell_id.replace("-mpd-early", "-mpd").removesuffix(f"-seed{seed}")]
        assert cell.config == dataclasses.replace(original.config, decoder="mpd-early", seed=seed)
        assert cell.paper == original.paper and cell.labels["decoder"] == "mpd-early"
        assert cell.run_name == f"mpd-order/{cell.cell_id}"
    assert seeds == [0] * 4 + [1] * 4 + [2] * 4        # seed-major; seed 0's cells keep their ids


def test_training_rule_cells_are_table2s_uwe_uwd_cells_with_a_validation_split():
    table2 = by_id("table2")
    rules = by_id("training-rules")
    assert set(rules) == {"uwe-uwd-stbp", "uwe-uwd-itbp-detached", "uwe-uwd-itbp-through-time"}
    for cell_id, cell in rules.items():
        assert cell.config == dataclasses.replace(table2[cell_id].config, val_size=experiments.VALIDATION_IMAGES)
        assert cell.paper == table2[cell_id].paper
        assert cell.run_name == f"training-rules/{cell_id}"       # its own runs, not Table 2's 1-epoch ones


@pytest.mark.parametrize("name, field_name, count", [("output-threshold", "output_threshold", 3), ("learning-rate", "lr", 3),
                                                      ("lif-tau", "tau", 3), ("lif-init", "init_gain", 3),
                                                      ("weight-average", "ema_decay", 2)])
def test_lever_cells_are_table1_cells_with_one_field_changed_and_share_its_runs_at_its_value(name, field_name, count):
    table1 = by_id("table1")
    values = set()
    for cell in cells(name):
        original = table1[f"{cell.labels['dataset']}-{cell.labels['neuron']}-0.2"]
        value, seed = cell.labels[field_name], cell.labels.get("seed", original.config.seed)
        values.add(value)
        assert cell.config == dataclasses.replace(original.config, **{field_name: value, "seed": seed})
        assert cell.paper == original.paper
        assert (cell.run_name == original.run_name) == (value == getattr(original.config, field_name)
                                                        and seed == original.config.seed)
    assert len(values) == count                  # Table 1's value and the others


def test_lr_and_average_crosses_both_levers_and_trains_only_the_combination_anew():
    table1, learning_rate, average = by_id("table1"), by_id("learning-rate"), by_id("weight-average")
    combined = cells("lr-and-average")
    assert {(c.labels["lr"], c.labels["ema_decay"]) for c in combined} == {(1e-3, 0.0), (1e-3, 0.999),
                                                                            (1e-2, 0.0), (1e-2, 0.999)}
    for cell in combined:
        key = f"{cell.labels['dataset']}-{cell.labels['neuron']}-0.2"
        lr, decay = cell.labels["lr"], cell.labels["ema_decay"]
        assert cell.config == dataclasses.replace(table1[key].config, lr=lr, ema_decay=decay)
        assert cell.paper == table1[key].paper
        shared = {(1e-3, 0.0): table1[key], (1e-2, 0.0): learning_rate.get(f"{key}-lr0.01"),
                  (1e-3, 0.999): average[f"{key}-ema0.999"]}.get((lr, decay))
        if shared is None:
            assert cell.run_name == f"lr-and-average/{cell.cell_id}"
        else:
            assert cell.run_name == shared.run_name


def test_long_training_trains_cells_of_other_experiments_longer_unless_told_and_cifar_with_more_seeds():
    shorter = {"fashion_mnist-if-0.2": by_id("lr-and-average")["fashion_mnist-if-0.2-lr0.01-ema0.999"],
               "cifar10-if-0.2": by_id("residual-targets")["cifar10-if-0.2-residual"]}
    residual = by_id("residual-targets")
    shorter.update({f"{residual[cell_id].config.dataset}-lif-{residual[cell_id].config.noise:g}": residual[cell_id]
                    for cell_id in experiments.LONG_LIF_CELLS})
    all_cells = cells("long-training")
    seeded = [cell for cell in all_cells if cell.config.seed != 0]
    longer = [cell for cell in all_cells if cell.config.seed == 0]
    cifar = longer[1]
    assert [(cell.cell_id, cell.config) for cell in seeded] == [
        (f"{cifar.cell_id}-seed{seed}", dataclasses.replace(cifar.config, seed=seed))
        for seed in experiments.LONG_TRAINING_SEEDS]
    assert len(longer) == len(shorter)
    for long in longer:
        short = shorter[f"{long.config.dataset}-{long.config.neuron}-{long.config.noise:g}"]
        epochs = (experiments.LONG_LIF_EPOCHS if long.config.neuron == "lif"
                  else experiments.LONG_TRAINING_EPOCHS[long.config.dataset])
        assert epochs > short.config.epochs
        assert long.config == dataclasses.replace(short.config, epochs=epochs)
        assert long.run_name == f"long-training/{long.cell_id}" and long.paper == short.paper
        assert long.labels["neuron"] == long.config.neuron and long.labels["noise"] == long.config.noise
    assert {cell.config.epochs for cell in cells("long-training", epochs=2)} == {2}


def test_plane_weights_are_lr_and_averages_cells_with_squared_weights_trained_as_table1():
    combined = by_id("lr-and-average")
    squared = cells("plane-weights")
    assert {(c.labels["dataset"], c.labels["neuron"], c.labels["lr"]) for c in squared} == {
        ("fashion_mnist", "if", 1e-3), ("cifar10", "if", 1e-3), ("mnist", "lif", 1e-3),
        ("fashion_mnist", "lif", 1e-3), ("cifar10", "lif", 1e-3), ("fashion_mnist", "if", 1e-2)}
    for cell in squared:
        lr, decay = cell.labels["lr"], cell.labels["ema_decay"]
        twin = combined[f"{cell.labels['dataset']}-{cell.labels['neuron']}-0.2-lr{lr:g}-ema{decay:g}"]
        assert cell.config == dataclasses.replace(twin.config, loss="bitplane-squared", val_size=5000,
                                                  epochs=5 if cell.labels["neuron"] == "if" else 3)
        assert cell.paper == twin.paper and cell.run_name == f"plane-weights/{cell.cell_id}"


def test_joint_losses_change_only_the_loss_of_table1s_fashion_mnist_if_cell():
    [twin] = cells("table1", subset="dataset=fashion_mnist,neuron=if,noise=0.2")
    *joint, levers = cells("joint-losses")
    assert [cell.labels["loss"] for cell in joint] == ["bitplane-residual", "bitplane-flip", "decoded-flip"]
    for cell in joint:
        assert cell.config == dataclasses.replace(twin.config, loss=cell.labels["loss"], epochs=5, val_size=5000)
        assert cell.paper == twin.paper and cell.run_name == f"joint-losses/{cell.cell_id}"
    both = by_id("lr-and-average")["fashion_mnist-if-0.2-lr0.01-ema0.999"]
    assert levers.config == dataclasses.replace(both.config, loss="bitplane-residual", epochs=5, val_size=5000)


def test_residual_targets_change_table1s_cells_by_the_recipe_only():
    table1 = by_id("table1")
    seeded = [cell for cell in cells("residual-targets") if "seed" in cell.labels]
    *residual, alone = [cell for cell in cells("residual-targets")
                        if cell not in seeded and cell.labels["precision"] == "bf16"]
    assert {(c.labels["dataset"], c.labels["neuron"], c.labels["noise"]) for c in residual} == {
        (dataset, neuron, 0.2) for dataset in ("mnist", "fashion_mnist", "cifar10") for neuron in ("if", "lif")
    } | {("cifar10", "lif", 0.6)}
    for cell in [*residual, alone]:
        labels = cell.labels
        twin = table1[f"{labels['dataset']}-{labels['neuron']}-{labels['noise']:g}"]
        epochs = 5 if (labels["neuron"], labels["noise"]) == ("if", 0.2) else 3
        levers = {"lr": 1e-2, "ema_decay": 0.999} if cell in residual else {}
        assert cell.config == dataclasses.replace(twin.config, loss="bitplane-residual", epochs=epochs,
                                                  val_size=5000, **levers)
        assert cell.paper == twin.paper
    assert alone.cell_id == "cifar10-if-0.2-residual" and (alone.config.lr, alone.config.ema_decay) == (1e-3, 0.0)
    shared = {c.run_name for c in residual if (c.labels["dataset"], c.labels["neuron"]) == ("fashion_mnist", "if")}
    assert shared == {"joint-losses/fashion_mnist-if-0.2-bitplane-residual-lr0.01-ema0.999"}


def test_residual_targets_repeat_mnist_if_and_cifar10_lif_at_0_6_then_cifar10_if_alone_and_fmnist_if():
    by_cell = by_id("residual-targets")
    seeded = [cell for cell in cells("residual-targets")
              if "seed" in cell.labels and cell.labels["precision"] == "bf16"]
    assert [cell.cell_id for cell in seeded] == [
        f"{base}-residual-lr0.01-ema0.999-seed{seed}"
        for seed in (1, 2) for base in ("mnist-if-0.2", "cifar10-lif-0.6")] + [
        "cifar10-if-0.2-residual-seed1", "fashion_mnist-if-0.2-residual-lr0.01-ema0.999-seed1"]
    for cell in seeded:
        seed0 = by_cell[cell.cell_id.rsplit("-seed", 1)[0]]
        assert cell.config == dataclasses.replace(seed0.config, seed=cell.labels["seed"])
        assert cell.paper == seed0.paper and cell.run_name == f"residual-targets/{cell.cell_id}"


def test_residual_targets_fp32_cells_are_cifar10_if_with_the_targets_alone_with_seeds_0_1_and_2():
    every = cells("residual-targets")
    fp32, fp32_seed1, fp32_seed2 = [cell for cell in every if cell.config.precision == "fp32"]
    bf16_cells = [cell for cell in every if cell.config.precision != "fp32"]
    alone = by_id("residual-targets")["cifar10-if-0.2-residual"]
    assert fp32.cell_id == "cifar10-if-0.2-residual-fp32"
    assert fp32.config == dataclasses.replace(alone.config, precision="fp32") and fp32.config.seed == 0
    assert fp32.labels == {**alone.labels, "precision": "fp32"} and fp32.paper == alone.paper
    assert fp32.run_name == "residual-targets/cifar10-if-0.2-residual-fp32" != alone.run_name
    assert fp32_seed1.cell_id == "cifar10-if-0.2-residual-fp32-seed1"
    assert fp32_seed1.config == dataclasses.replace(fp32.config, seed=1)
    assert fp32_seed1.labels == {**fp32.labels, "seed": 1} and fp32_seed1.paper == fp32.paper
    assert without_seed_part(fp32_seed1.cell_id) == fp32.cell_id
    assert fp32_seed2.cell_id == "cifar10-if-0.2-residual-fp32-seed2"
    assert fp32_seed2.config == dataclasses.replace(fp32.config, seed=2) and fp32_seed2.paper == fp32.paper
    assert {cell.labels["precision"] for cell in bf16_cells} == {"bf16"}


def test_recipe_parts_cross_the_residual_targets_with_both_levers_on_mnist_if():
    parts = by_id("recipe-parts")
    assert list(parts) == ["mnist-if-0.2-bitplane", "mnist-if-0.2-bitplane-lr0.01-ema0.999",
                           "mnist-if-0.2-residual", "mnist-if-0.2-residual-lr0.01-ema0.999"]
    twin = by_id("table1")["mnist-if-0.2"]
    for cell in parts.values():
        labels = cell.labels
        assert cell.config == dataclasses.replace(twin.config, loss=labels["loss"], lr=labels["lr"],
                                                  ema_decay=labels["ema_decay"], epochs=5, val_size=5000)
        assert cell.paper == twin.paper
    # The parts share the runs already trained this way: Table 1's recipe with a validation
    # set is training-rules' run, and all three changes residual-targets' seed 0.
    assert parts["mnist-if-0.2-bitplane"].run_name == "training-rules/uwe-uwd-itbp-through-time"
    assert parts["mnist-if-0.2-residual-lr0.01-ema0.999"].run_name == \
        "residual-targets/mnist-if-0.2-residual-lr0.01-ema0.999"


def test_decoded_loss_changes_only_the_loss_of_table1s_noisier_if_cells():
    table1 = by_id("table1")
    decoded = cells("decoded-loss")
    assert {(c.labels["dataset"], c.labels["noise"]) for c in decoded} == {
        (dataset, noise) for dataset in ("mnist", "fashion_mnist") for noise in (0.4, 0.6, 0.8)}
    for cell in decoded:
        twin = table1[f"{cell.labels['dataset']}-if-{cell.labels['noise']:g}"]
        assert twin.config.temporal_grad      # Table 1's runs already train through time, as STBP does
        assert cell.config == dataclasses.replace(twin.config, training="stbp", loss="decoded", epochs=3, val_size=5000)
        assert cell.paper == twin.paper and cell.run_name == f"decoded-loss/{cell.cell_id}"


def test_learning_rate_repeats_fmnist_ifs_rates_and_cifar10_ifs_1e_2_with_another_seed():
    repeated = {cell.cell_id: cell.config for cell in cells("learning-rate") if "seed" in cell.labels}
    assert {(c.dataset, c.neuron, c.lr, c.seed) for c in repeated.values()} == {
        ("fashion_mnist", "if", 1e-3, 1), ("fashion_mnist", "if", 1e-2, 1), ("cifar10", "if", 1e-2, 1)}
    assert set(repeated) == {"fashion_mnist-if-0.2-lr0.001-seed1", "fashion_mnist-if-0.2-lr0.01-seed1",
                             "cifar10-if-0.2-lr0.01-seed1"}


def test_ann_ceiling_and_noise_scale_cells():
    ceiling = cells("ann-ceiling")
    assert [cell.config.noise for cell in ceiling] == list(experiments.NOISE_LEVELS) * 3
    assert [cell.config.dataset for cell in ceiling[::4]] == ["mnist", "fashion_mnist", "cifar10"]
    assert all(cell.config.training == "ann" for cell in ceiling)
    assert [cell.paper for cell in ceiling[:4]] == [23.57, 23.15, 23.09, 22.56]
    assert [cell.paper for cell in ceiling[8:]] == [18.27, 14.08, 14.76, 13.16]
    assert ceiling[0].run_name == "table2/ann"          # the ANN of Table 2 is the same run
    scaled = cells("noise-scale")
    assert [cell.config.noise for cell in scaled] == [0.0616, 0.1232, 0.1849, 0.2465]
    assert [cell.labels["noise"] for cell in scaled] == list(experiments.NOISE_LEVELS)
    assert all(cell.config.training == "itbp" and cell.config.neuron == "if" for cell in scaled)


def test_full_precision_cells_are_table1s_recorded_runs_in_fp32():
    # Paired with the committed Table 1 runs: same configuration, epochs and hold-out, only the arithmetic differs.
    recorded = {cell.cell_id: cell for cell in cells("table1", recorded_in=Path(__file__).parents[1] / "results")}
    fp32 = cells("full-precision")
    assert [(c.labels["dataset"], c.labels["neuron"], c.labels["noise"]) for c in fp32] == \
        list(experiments.FULL_PRECISION_CELLS)
    for cell in fp32:
        twin = recorded[cell.cell_id.removesuffix("-fp32")]
        assert twin.config.precision == "bf16"
        assert cell.config == dataclasses.replace(twin.config, precision="fp32")
        assert cell.paper == twin.paper and cell.run_name == f"full-precision/{cell.cell_id}"
        assert cell.paired_with == f"table1/{twin.cell_id}"


def test_every_pair_is_a_cell_that_differs_in_its_experiments_one_setting_alone():
    # Against the committed records: a pair is compared with the run it was, or will be, set beside.
    every = {f"{cell.experiment}/{cell.cell_id}": cell
             for cell in cells("all", recorded_in=Path(__file__).parents[1] / "results")}
    paired = [cell for cell in every.values() if cell.paired_with]
    # Each experiment's setting, and its value in the runs its cells are set beside (or its
    # settings and their values, for an experiment that changes several together).
    changed = {"full-precision": ("precision", "bf16"), "residual-targets": ("precision", "bf16"),
               "lif-rate": ("lr", 1e-2), "residual-tau": ("tau", 1.1), "tau-gain": ("init_gain", 1.5),
               "distill": ("teacher", None), "if-gain": ("init_gain", 1.5),
               "taught-fp32": ("precision", "bf16"), "batch-size": ("batch_size", 50),
               "mid-epoch": ("checks_per_epoch", 1), "batch-rate": ("lr", 1e-2), "flip": ("flip", False),
               "dense-checks": ("checks_per_epoch", experiments.MID_EPOCH_CHECKS),
               "flip-epochs": ("epochs", 3), "flip-batch": ("batch_size", 25), "flip-seeds": ("flip", False),
               "flip-batch-epochs": ("epochs", 5), "flip-small-batch": ("batch_size", 10),
               "flip-shift": ("shift", 0), "flip-average": ("ema_decay", 0.999),
               "flip-batch-restart": {"init_from": None, "epochs": 5, "lr": 1e-2},
               "flip-decay": {"weight_decay": 0.0, "decoupled_decay": False}, "flip-small-rate": ("lr", 1e-2),
               "flip-lif-tau": {"tau": 2.0, "init_gain": 4.0},
               "flip-lif-small-rate": {"batch_size": 10, "lr": 1e-2}, "flip-clip": ("clip_grad", 0.0),
               "flip-raw": ("score_raw", False), "flip-jitter": ("output_jitter", 0.0),
               "flip-jitter-small-rate": {"batch_size": 10, "lr": 1e-2}, "flip-wide-jitter": ("output_jitter", 0.1),
               "flip-jitter-epochs": ("epochs", 3)}
    # Cells paired with a run of another experiment than their experiment's other cells.
    seed2 = experiments.FLIP_JITTER_SMALL_RATE_MORE_SEEDS[0]
    changed_for_cell = {"flip-jitter-small-rate/fashion_mnist-if-0.2-residual-lr0.005-ema0.999-taught-batch5-checks4-"
                        f"flip-raw-jitter0.1-seed{seed2}": {"output_jitter": 0.0, "score_raw": False}}
    assert {cell.experiment for cell in paired} == set(changed)
    assert set(changed_for_cell) <= set(every)
    for cell in paired:
        pair = every[cell.paired_with]
        settings = changed_for_cell.get(f"{cell.experiment}/{cell.cell_id}", changed[cell.experiment])
        pair_values = settings if isinstance(settings, dict) else dict([settings])
        for setting, pair_value in pair_values.items():
            assert getattr(pair.config, setting) == pair_value != getattr(cell.config, setting)
        assert dataclasses.replace(cell.config, **pair_values) == pair.config


def test_lif_rate_cells_are_residual_targets_lif_cells_at_a_lower_peak_rate():
    residual = by_id("residual-targets")
    rate = cells("lif-rate")
    assert [(c.config.dataset, c.config.noise, c.config.lr) for c in rate] == \
        [(dataset, noise, lr) for lr in experiments.LIF_RATE_LRS for dataset, noise in experiments.LIF_GAP_CELLS]
    for cell in rate:
        twin = residual[cell.paired_with.removeprefix("residual-targets/")]
        assert cell.config.neuron == "lif" and cell.config.loss == "bitplane-residual" and cell.config.lr < 1e-2
        assert cell.cell_id == twin.cell_id.replace("lr0.01", f"lr{cell.config.lr:g}")
        assert cell.paper == twin.paper and cell.labels["lr"] == cell.config.lr
        assert cell.run_name == f"lif-rate/{cell.cell_id}"


def test_residual_tau_cells_are_residual_targets_lif_cells_with_a_longer_memory():
    residual = by_id("residual-targets")
    every = cells("residual-tau")
    longer = [cell for cell in every if cell.config.seed == 0]
    assert [(c.config.dataset, c.config.noise, c.config.tau) for c in longer] == \
        [(dataset, noise, tau) for tau in experiments.RESIDUAL_TAUS for dataset, noise in experiments.LIF_GAP_CELLS]
    seeded = every[len(longer):]
    twins = by_id("residual-tau")
    assert [cell.cell_id for cell in seeded] == [f"{cell_id}-seed{seed}" for cell_id, seeds in
                                                 experiments.RESIDUAL_TAU_SEEDED.items() for seed in seeds]
    for cell in seeded:
        twin = twins[experiments.without_seed_part(cell.cell_id)]
        assert cell.config == dataclasses.replace(twin.config, seed=cell.config.seed) and cell.paired_with == ""
    for cell in longer:
        twin = residual[cell.paired_with.removeprefix("residual-targets/")]
        assert twin.config.tau == 1.1 < cell.config.tau and cell.config.neuron == "lif"
        assert cell.cell_id == f"{twin.cell_id}-tau{cell.config.tau:g}" and cell.labels["tau"] == cell.config.tau
        assert cell.paper == twin.paper and cell.run_name == f"residual-tau/{cell.cell_id}"


def test_distill_trains_the_ann_twins_first_and_teaches_the_closest_recipes_with_their_runs():
    every = cells("distill")
    teachers = [cell for cell in every if cell.config.training == "ann"]
    assert every[:len(teachers)] == teachers
    assert [t.run_name for t in teachers] == ["ann-ceiling/fashion_mnist-ann-0.2", "ann-ceiling/cifar10-ann-0.2"]
    for teacher in teachers:
        assert teacher.config == by_id("ann-ceiling")[teacher.run_name.removeprefix("ann-ceiling/")].config
    teacher_runs = {t.config.dataset: f"runs/{t.run_name}" for t in teachers}
    recipes = {f"{name}/{k}": c for name in ("residual-targets", "residual-tau", "tau-gain")
               for k, c in by_id(name).items()}
    students = every[len(teachers):]
    assert [recipes[cell.paired_with].config.seed for cell in students] == [0, 0, 0, 0, 1, 2, 1]
    assert [(c.config.dataset, c.config.neuron, c.config.init_gain) for c in students[:4]] == [
        ("fashion_mnist", "if", 1.5), ("fashion_mnist", "lif", 1.5), ("fashion_mnist", "lif", 4.0),
        ("cifar10", "lif", 4.0)]
    for cell in students:
        recipe = recipes[cell.paired_with]
        assert cell.config.teacher == teacher_runs[cell.config.dataset]
        assert cell.config == dataclasses.replace(recipe.config, teacher=cell.config.teacher)
        assert cell.config.noise == 0.2 and cell.config.seed == recipe.config.seed
        assert cell.paper == experiments.PAPER_TABLE1[(cell.config.dataset, "if")][0]
        assert cell.run_name == f"distill/{cell.cell_id}"
    assert {recipes[cell.paired_with].config.tau for cell in students if cell.config.neuron == "lif"} == {2.0}


def test_a_teacher_run_moves_with_the_runs_folder(tmp_path):
    moved = cells("distill", runs_root=tmp_path / "elsewhere")
    assert [cell.config.teacher for cell in moved[:2]] == [None, None]
    assert all(cell.config.teacher == str(tmp_path / "elsewhere" / "ann-ceiling" / f"{cell.config.dataset}-ann-0.2")
               for cell in moved[2:])
    assert [cell.run_name for cell in moved] == [cell.run_name for cell in cells("distill")]


# (experiment, setting, its values, id suffix, students varied, the students' value, which way it moves)
@pytest.mark.parametrize("name, setting, values, suffix, students, student_value, moves", [
    ("if-gain", "init_gain", experiments.IF_GAINS, "gain", (experiments.FMNIST_IF_STUDENT,), 1.5, "up"),
    ("batch-size", "batch_size", experiments.BATCH_SIZES, "batch", experiments.BATCH_SIZE_STUDENTS, 50, "down")])
def test_student_variants_are_distill_s_students_with_one_setting_changed_after_their_teacher(
        name, setting, values, suffix, students, student_value, moves):
    teacher, *varied = [cell for cell in cells(name) if cell.config.seed == 0]
    distill = by_id("distill")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    assert [(cell.paired_with, getattr(cell.config, setting)) for cell in varied] == \
        [(f"distill/{student}", value) for student in students for value in values]
    for cell in varied:
        student = distill[cell.paired_with.removeprefix("distill/")]
        value = getattr(cell.config, setting)
        assert student.config.dataset == "fashion_mnist" and student.config.noise == 0.2
        assert getattr(student.config, setting) == student_value
        assert (value > student_value) if moves == "up" else (value < student_value)
        assert cell.config == dataclasses.replace(student.config, **{setting: value})
        assert cell.labels == {**student.labels, setting: value}
        assert cell.config.teacher == f"runs/{teacher.run_name}" and cell.paper == student.paper
        assert cell.cell_id == f"{student.cell_id}-{suffix}{value:g}" and cell.run_name == f"{name}/{cell.cell_id}"


def test_batch_size_repeats_the_chosen_if_student_with_other_seeds_beside_distill_s_of_the_same_seed():
    batch = by_id("batch-size")
    seeded = [cell for cell in batch.values() if cell.config.seed != 0]
    assert [cell.cell_id for cell in seeded] == [f"{cell_id}-seed{seed}" for cell_id, seeds in
                                                 experiments.BATCH_SIZE_SEEDED.items() for seed in seeds]
    for cell in seeded:
        seed0 = batch[experiments.without_seed_part(cell.cell_id)]
        assert cell.config == dataclasses.replace(seed0.config, seed=cell.config.seed)
        assert cell.paired_with == f"{seed0.paired_with}-seed{cell.config.seed}"
        assert cell.paired_with.removeprefix("distill/") in by_id("distill")


def test_mid_epoch_cells_are_batch_size_s_students_checked_more_often_after_their_teacher():
    teacher, *checked = cells("mid-epoch")
    batch = by_id("batch-size")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    assert [(c.config.neuron, c.config.seed) for c in checked] == [("if", 0), ("lif", 0), ("if", 1)]
    for cell in checked:
        base = batch[cell.paired_with.removeprefix("batch-size/")]
        assert base.config.batch_size < 50 and base.config.checks_per_epoch == 1 and base.config.val_size > 0
        assert cell.config == dataclasses.replace(base.config, checks_per_epoch=experiments.MID_EPOCH_CHECKS)
        assert cell.config.checks_per_epoch > 1 and cell.paper == base.paper
        assert cell.run_name == f"mid-epoch/{cell.cell_id}" and cell.config.teacher == f"runs/{teacher.run_name}"
    assert [c.config.batch_size for c in checked] == [25, 10, 25]
    assert checked[2].cell_id == f"{checked[0].cell_id}-seed1"


def test_batch_rate_cell_is_mid_epoch_s_if_student_with_the_rate_halved_with_the_batch():
    teacher, cell = cells("batch-rate")
    mid = by_id("mid-epoch")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    base = mid[cell.paired_with.removeprefix("mid-epoch/")]
    assert base.config.neuron == "if" and base.config.seed == 0 and base.config.lr == 1e-2
    assert cell.config == dataclasses.replace(base.config, lr=experiments.BATCH_RATE)
    # The rate per image of batch 50's recipe: halved with the batch.
    recipe = by_id("distill")[experiments.FMNIST_IF_STUDENT].config
    assert cell.config.lr / cell.config.batch_size == pytest.approx(recipe.lr / recipe.batch_size)
    assert cell.run_name == f"batch-rate/{cell.cell_id}" and cell.config.teacher == f"runs/{teacher.run_name}"


def test_flip_cells_are_mid_epoch_s_students_trained_on_mirrored_images():
    teacher, *students = cells("flip")
    mid = by_id("mid-epoch")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    assert [(c.config.neuron, c.config.batch_size, c.config.seed) for c in students] == \
        [("if", 25, 0), ("lif", 10, 0), ("if", 25, 1)]
    for cell in students:
        base = mid[cell.paired_with.removeprefix("mid-epoch/")]
        assert cell.config == dataclasses.replace(base.config, flip=True) and not base.config.flip
        assert cell.labels["flip"] is True and cell.paper == base.paper
        assert cell.run_name == f"flip/{cell.cell_id}" and cell.config.teacher == f"runs/{teacher.run_name}"
    assert students[-1].cell_id == students[0].cell_id + "-seed1"


def test_flip_epochs_cell_is_flip_s_lif_student_trained_longer():
    teacher, student = cells("flip-epochs")
    base = by_id("flip")[student.paired_with.removeprefix("flip/")]
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    assert base.config.neuron == "lif" and base.config.flip and base.config.epochs == 3
    assert student.config == dataclasses.replace(base.config, epochs=experiments.FLIP_EPOCHS) and student.config.epochs == 5
    assert student.cell_id == base.cell_id + "-epochs5" and student.paper == base.paper
    assert student.run_name == f"flip-epochs/{student.cell_id}" and student.config.teacher == f"runs/{teacher.run_name}"


def test_flip_batch_cells_are_flip_s_if_students_with_smaller_batches():
    teacher, student, seeded, unpaired = cells("flip-batch")
    flip = by_id("flip")
    base = flip[student.paired_with.removeprefix("flip/")]
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    assert (base.config.neuron, base.config.seed, base.config.batch_size, base.config.flip) == ("if", 0, 25, True)
    assert student.config == dataclasses.replace(base.config, batch_size=10) and student.labels["batch_size"] == 10
    assert student.cell_id == base.cell_id.replace("-batch25-", "-batch10-") and student.paper == base.paper
    assert student.run_name == f"flip-batch/{student.cell_id}" and student.config.teacher == f"runs/{teacher.run_name}"
    # Seed 1, paired with flip's run of that seed.
    assert seeded.config == dataclasses.replace(student.config, seed=1) and seeded.cell_id == student.cell_id + "-seed1"
    assert seeded.paired_with == student.paired_with + "-seed1"
    assert flip[seeded.paired_with.removeprefix("flip/")].config == dataclasses.replace(seeded.config, batch_size=25)
    # Seed 2, which flip has no run of: unpaired.
    assert unpaired.config == dataclasses.replace(student.config, seed=2) and unpaired.cell_id == student.cell_id + "-seed2"
    assert not unpaired.paired_with and unpaired.labels["seed"] == 2
    assert student.paired_with.removeprefix("flip/") + "-seed2" not in flip


@pytest.mark.parametrize("experiment, settings, cell_id", [
    # The id names the new batch in place of the old, or adds the shift (or decay) before any seed.
    ("flip-small-batch", {"batch_size": 5}, lambda base_id, seed: base_id.replace("-batch10-", "-batch5-")),
    ("flip-shift", {"shift": 1}, lambda base_id, seed: base_id.removesuffix(f"-seed{seed}") + "-shift1"
     + (f"-seed{seed}" if seed else "")),
    ("flip-average", {"ema_decay": 0.9998}, lambda base_id, seed: base_id.replace("-ema0.999-", "-ema0.9998-")),
    ("flip-decay", {"weight_decay": 5e-3, "decoupled_decay": True},
     lambda base_id, seed: base_id.removesuffix(f"-seed{seed}") + "-adamw0.005" + (f"-seed{seed}" if seed else "")),
    ("flip-clip", {"clip_grad": 0.5}, lambda base_id, seed: base_id.removesuffix(f"-seed{seed}") + "-clip0.5"
     + (f"-seed{seed}" if seed else "")),
])
def test_flip_batch_variants_are_flip_batch_s_students_with_one_setting_changed(experiment, settings, cell_id):
    teacher, student, seeded = cells(experiment)
    batch = by_id("flip-batch")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    for cell, seed in ((student, 0), (seeded, 1)):
        base = batch[cell.paired_with.removeprefix("flip-batch/")]
        assert (base.config.neuron, base.config.seed, base.config.batch_size, base.config.flip, base.config.shift) == \
            ("if", seed, 10, True, 0)
        assert cell.config == dataclasses.replace(base.config, **settings)
        assert all(cell.labels[setting] == value for setting, value in settings.items())
        assert cell.cell_id == cell_id(base.cell_id, seed) and cell.paper == base.paper
        assert cell.run_name == f"{experiment}/{cell.cell_id}" and cell.config.teacher == f"runs/{teacher.run_name}"


def test_flip_small_rate_cell_is_flip_small_batch_s_student_at_half_its_rate():
    teacher, student, seeded, unpaired = cells("flip-small-rate")
    small = by_id("flip-small-batch")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    for cell, seed in ((student, 0), (seeded, 1)):
        base = small[cell.paired_with.removeprefix("flip-small-batch/")]
        assert (base.config.neuron, base.config.seed, base.config.batch_size, base.config.lr) == ("if", seed, 5, 1e-2)
        assert cell.config == dataclasses.replace(base.config, lr=5e-3) and cell.labels["lr"] == 5e-3
        assert cell.cell_id == base.cell_id.replace("-lr0.01-", "-lr0.005-")
        assert cell.run_name == f"flip-small-rate/{cell.cell_id}" and cell.config.teacher == f"runs/{teacher.run_name}"
    # Seed 2, which flip-small-batch has no run of: unpaired.
    assert unpaired.config == dataclasses.replace(student.config, seed=2) and unpaired.cell_id == student.cell_id + "-seed2"
    assert not unpaired.paired_with and unpaired.labels["seed"] == 2
    assert student.paired_with.removeprefix("flip-small-batch/") + "-seed2" not in by_id("flip-small-batch")


def test_flip_lif_tau_cells_are_flip_s_lif_students_with_a_longer_memory():
    teacher, student, longer, seeded = cells("flip-lif-tau")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    for cell, seed, source, tau, gain in ((student, 0, "flip", 4, 7), (longer, 0, "flip", 8, 13),
                                          (seeded, 1, "flip-seeds", 4, 7)):
        base = by_id(source)[cell.paired_with.removeprefix(f"{source}/")]
        assert (base.config.neuron, base.config.seed, base.config.flip, base.config.tau, base.config.init_gain) == \
            ("lif", seed, True, 2.0, 4.0)
        assert cell.config == dataclasses.replace(base.config, tau=tau, init_gain=gain)
        assert (cell.labels["tau"], cell.labels["init_gain"]) == (tau, gain)
        assert cell.cell_id == base.cell_id.replace("-tau2-gain4-", f"-tau{tau}-gain{gain}-") and cell.paper == base.paper
        assert cell.run_name == f"flip-lif-tau/{cell.cell_id}" and cell.config.teacher == f"runs/{teacher.run_name}"


def test_flip_lif_small_rate_cells_are_flip_s_lif_students_with_flip_small_rate_s_batches_and_rate():
    teacher, student, seeded, longer, longer_seeded = cells("flip-lif-small-rate")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    for cell, seed, source, tau in ((student, 0, "flip", 2.0), (seeded, 1, "flip-seeds", 2.0),
                                    (longer, 0, "flip-lif-tau", 4.0), (longer_seeded, 1, "flip-lif-tau", 4.0)):
        base = by_id(source)[cell.paired_with.removeprefix(f"{source}/")]
        assert (base.config.neuron, base.config.seed, base.config.flip, base.config.batch_size, base.config.lr,
                base.config.tau) == ("lif", seed, True, 10, 1e-2, tau)
        assert cell.config == dataclasses.replace(base.config, batch_size=5, lr=5e-3)
        assert (cell.labels["batch_size"], cell.labels["lr"]) == (5, 5e-3)
        assert cell.cell_id == base.cell_id.replace("-lr0.01-", "-lr0.005-").replace("-batch10-", "-batch5-")
        assert cell.run_name == f"flip-lif-small-rate/{cell.cell_id}" and cell.paper == base.paper
        assert cell.config.teacher == f"runs/{teacher.run_name}"
    # The seed-0 run is flip's mirrored LIF student changed.
    assert student.paired_with == f"flip/{experiments.FLIP_LIF_STUDENT}"
    assert all(cell.labels["tau"] == 4.0 and cell.config.init_gain == 7.0 for cell in (longer, longer_seeded))


def test_flip_raw_cells_are_flip_batch_s_and_flip_lif_small_rate_s_students_keeping_raw_weights_too():
    teacher, *students = cells("flip-raw")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    expected = (("flip-batch", "if", 0, 2.0), ("flip-batch", "if", 1, 2.0),
                ("flip-lif-small-rate", "lif", 0, 4.0), ("flip-lif-small-rate", "lif", 1, 4.0))
    assert len(students) == len(expected)
    for cell, (source, neuron, seed, tau) in zip(students, expected):
        base = by_id(source)[cell.paired_with.removeprefix(f"{source}/")]
        assert (base.config.neuron, base.config.seed, base.config.score_raw) == (neuron, seed, False)
        assert base.config.flip and base.config.ema_decay and base.config.val_size
        assert neuron == "if" or base.config.tau == tau
        assert cell.config == dataclasses.replace(base.config, score_raw=True) and cell.labels["score_raw"] is True
        assert cell.run_name == f"flip-raw/{cell.cell_id}" and cell.paper == base.paper
        assert cell.config.teacher == f"runs/{teacher.run_name}"
    # The ids add "-raw" before flip-batch's seed, and after flip-lif-small-rate's whole id.
    assert students[1].cell_id == students[0].cell_id + "-seed1"
    assert students[2].cell_id == students[2].paired_with.removeprefix("flip-lif-small-rate/") + "-raw"


def test_a_cell_whose_id_does_not_name_its_tau_is_refused():
    flip_if = by_id("flip-batch")["fashion_mnist-if-0.2-residual-lr0.01-ema0.999-taught-batch10-checks4-flip"]
    with pytest.raises(ValueError, match="does not name its tau and gain"):
        experiments._with_tau("x", flip_if, 4.0, 7.0)


def test_flip_batch_epochs_cell_is_flip_batch_s_student_trained_longer():
    teacher, student = cells("flip-batch-epochs")
    base = by_id("flip-batch")[student.paired_with.removeprefix("flip-batch/")]
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    assert (base.config.neuron, base.config.seed, base.config.batch_size, base.config.epochs) == ("if", 0, 10, 5)
    assert student.config == dataclasses.replace(base.config, epochs=experiments.FLIP_BATCH_EPOCHS)
    assert student.config.epochs == 8 and student.cell_id == base.cell_id + "-epochs8"
    assert student.run_name == f"flip-batch-epochs/{student.cell_id}" and student.config.teacher == f"runs/{teacher.run_name}"


def test_flip_batch_restart_cells_start_flip_batch_s_runs_again_from_the_weights_they_kept(tmp_path):
    teacher, *rest = cells("flip-batch-restart")
    runs, restarts = rest[:3], rest[3:]
    batch = by_id("flip-batch")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    # flip-batch's three runs, shared with it, set beside nothing here.
    assert [run.run_name for run in runs] == [f"flip-batch/{cell_id}" for cell_id in list(batch)[1:]]
    assert [run.config.seed for run in runs] == [0, 1, 2] and not any(run.paired_with for run in runs)
    assert all(run.config == batch[run.cell_id].config for run in runs)
    for run, restart in zip(runs, restarts):
        seed = run.config.seed
        kept = f"runs/flip-batch/{run.cell_id}/best"
        assert restart.config == dataclasses.replace(run.config, init_from=kept, epochs=2, lr=2e-3)
        assert restart.paired_with == f"flip-batch/{run.cell_id}" and restart.paper == run.paper == 21.67
        assert restart.cell_id == run.cell_id.removesuffix(f"-seed{seed}") + "-restart" + (f"-seed{seed}" if seed else "")
        assert restart.labels["restarted_from"] == restart.paired_with and restart.labels["epochs"] == 2
        assert restart.run_name == f"flip-batch-restart/{restart.cell_id}"
    # The starting weights, like the teacher, are looked for under another runs folder.
    moved = cells("flip-batch-restart", runs_root=tmp_path / "elsewhere")[4:]
    assert [cell.config.init_from for cell in moved] == \
        [str(tmp_path / "elsewhere" / "flip-batch" / run.cell_id / "best") for run in runs]
    assert all(cell.config.teacher == str(tmp_path / "elsewhere" / teacher.run_name) for cell in moved)


def test_flip_seeds_cells_are_the_lif_student_with_seed_1_mirrored_and_not():
    teacher, plain, mirrored = cells("flip-seeds")
    lif = by_id("mid-epoch")[experiments.FLIP_SEEDS_STUDENT]
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    assert lif.config.neuron == "lif" and lif.config.seed == 0
    assert plain.config == dataclasses.replace(lif.config, seed=1) and not plain.paired_with
    assert plain.cell_id == lif.cell_id + "-seed1" and plain.paper == lif.paper
    assert mirrored.config == dataclasses.replace(plain.config, flip=True)
    assert mirrored.paired_with == f"flip-seeds/{plain.cell_id}" and mirrored.cell_id == plain.cell_id + "-flip"
    # The same configuration as flip's mirrored LIF cell, but for the seed.
    flip_lif = by_id("flip")[experiments.FLIP_SEEDS_STUDENT + "-flip"]
    assert mirrored.config == dataclasses.replace(flip_lif.config, seed=1)
    for cell in (plain, mirrored):
        assert cell.run_name == f"flip-seeds/{cell.cell_id}" and cell.config.teacher == f"runs/{teacher.run_name}"


def test_dense_checks_cells_are_mid_epoch_s_students_checked_more_often():
    teacher, *dense = cells("dense-checks")
    mid = by_id("mid-epoch")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    assert len(dense) == len(mid) - 1
    for cell in dense:
        base = mid[cell.paired_with.removeprefix("mid-epoch/")]
        assert cell.config == dataclasses.replace(base.config, checks_per_epoch=experiments.DENSE_CHECKS)
        assert experiments.DENSE_CHECKS > base.config.checks_per_epoch == experiments.MID_EPOCH_CHECKS
        assert cell.cell_id == base.cell_id.replace("-checks4", "-checks20") and cell.paper == base.paper
        assert cell.run_name == f"dense-checks/{cell.cell_id}" and cell.config.teacher == f"runs/{teacher.run_name}"


def test_taught_fp32_cells_are_distill_s_f_mnist_students_in_fp32_after_their_teacher():
    teacher, *students = cells("taught-fp32")
    distill = by_id("distill")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    assert [(c.config.neuron, c.config.seed) for c in students] == [("if", 0), ("lif", 0)]
    for cell in students:
        bf16 = distill[cell.paired_with.removeprefix("distill/")]
        assert bf16.config.precision == "bf16" and cell.config == dataclasses.replace(bf16.config, precision="fp32")
        assert cell.config.teacher == f"runs/{teacher.run_name}" and cell.paper == bf16.paper
        assert cell.cell_id == f"{bf16.cell_id}-fp32" and cell.run_name == f"taught-fp32/{cell.cell_id}"


def test_tau_gain_cells_are_residual_tau_s_tau_2_cells_firing_at_initialization():
    twins = by_id("residual-tau")
    every = cells("tau-gain")
    first = every[:len(experiments.LIF_GAP_CELLS)]
    assert [(c.config.dataset, c.config.noise) for c in first] == list(experiments.LIF_GAP_CELLS)
    assert [c.cell_id for c in every[len(first):]] == [f"{cell_id}-seed{seed}" for cell_id, seeds in
                                                       experiments.TAU_GAIN_SEEDED.items() for seed in seeds]
    for cell in every:
        twin = twins[cell.paired_with.removeprefix("residual-tau/")]
        assert twin.config.tau == cell.config.tau == 2.0 and twin.config.seed == cell.config.seed
        assert cell.config == dataclasses.replace(twin.config, init_gain=4.0)
        without_seed = experiments.without_seed_part
        assert without_seed(cell.cell_id) == f"{without_seed(twin.cell_id)}-gain4" and cell.paper == twin.paper
        assert cell.run_name == f"tau-gain/{cell.cell_id}"


def test_flip_batch_recipe_text_drops_or_respells_a_named_part_and_refuses_unknown_ones():
    recipe = experiments._flip_batch_recipe_text
    assert "batches of 10" in recipe() and "batches of 10" not in recipe(without="batch")
    changed = recipe(batch="batches of 5")
    assert changed == recipe().replace("batches of 10", "batches of 5") and "batches of 10" not in changed
    for bad in ({"without": "colour"}, {"colour": "red"}):
        with pytest.raises(ValueError, match="no part 'colour' in flip-batch's recipe"):
            recipe(**bad)


def test_flip_lif_recipe_text_drops_the_named_parts_and_refuses_unknown_ones():
    recipe = experiments._flip_lif_recipe_text
    assert "tau 2" in recipe() and "batches of 10" in recipe() and "1e-2" in recipe()
    assert recipe("rate", "batch") == recipe().replace("Adam's peak rate 1e-2 on a cosine schedule, ", "").replace(
        "batches of 10, ", "")
    with pytest.raises(ValueError, match="no part 'colour' in flip's LIF recipe"):
        recipe("tau", "colour")


def test_flip_jitter_cells_are_flip_raw_s_students_with_the_output_jittered():
    teacher, *students = cells("flip-jitter")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    raw = by_id("flip-raw")
    expected = (("if", 0), ("lif", 0), ("if", 1), ("lif", 1))
    assert len(students) == len(expected)
    for cell, (neuron, seed) in zip(students, expected):
        base = raw[cell.paired_with.removeprefix("flip-raw/")]
        assert (base.config.neuron, base.config.seed, base.config.score_raw) == (neuron, seed, True)
        assert cell.config == dataclasses.replace(base.config, output_jitter=experiments.FLIP_JITTER)
        assert cell.cell_id == f"{base.cell_id}-jitter{experiments.FLIP_JITTER:g}"
        assert cell.labels["output_jitter"] == experiments.FLIP_JITTER
        assert cell.run_name == f"flip-jitter/{cell.cell_id}" and cell.paper == base.paper
        assert cell.config.teacher == f"runs/{teacher.run_name}"
    assert 0 < experiments.FLIP_JITTER < 1


def test_flip_jitter_small_rate_cells_are_flip_jitter_s_if_students_at_the_small_rate():
    teacher, *students = cells("flip-jitter-small-rate")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    jitter = by_id("flip-jitter")
    more = experiments.FLIP_JITTER_SMALL_RATE_MORE_SEEDS
    assert [cell.config.seed for cell in students] == [0, 1, *more]
    paired, unjittered = students[:2], students[2:]
    for cell in paired:
        base = jitter[cell.paired_with.removeprefix("flip-jitter/")]
        assert (base.config.neuron, base.config.output_jitter, base.config.score_raw) == \
            ("if", experiments.FLIP_JITTER, True)
        assert cell.config == dataclasses.replace(base.config, batch_size=experiments.FLIP_SMALL_BATCH,
                                                  lr=experiments.FLIP_SMALL_RATE)
        assert cell.cell_id == base.cell_id.replace("-lr0.01-", "-lr0.005-").replace("-batch10-", "-batch5-")
        assert cell.run_name == f"flip-jitter-small-rate/{cell.cell_id}" and cell.paper == base.paper
        assert cell.config.teacher == f"runs/{teacher.run_name}"
    small_rate = by_id("flip-small-rate")
    for cell, seed in zip(unjittered, more, strict=True):
        # flip-jitter has no run of this seed: the pair is flip-small-rate's, without jitter.
        base = small_rate[cell.paired_with.removeprefix("flip-small-rate/")]
        assert cell.paired_with.startswith("flip-small-rate/") and base.config.seed == seed
        assert cell.config == dataclasses.replace(paired[0].config, seed=seed)
        assert cell.config == dataclasses.replace(base.config, output_jitter=experiments.FLIP_JITTER, score_raw=True)
        assert cell.cell_id == f"{paired[0].cell_id}-seed{seed}" and cell.labels["seed"] == seed
        assert cell.run_name == f"flip-jitter-small-rate/{cell.cell_id}" and cell.paper == base.paper


def test_flip_wide_jitter_cells_are_flip_jitter_s_lif_students_with_a_wider_jitter():
    teacher, *students = cells("flip-wide-jitter")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    jitter = by_id("flip-jitter")
    assert [(cell.config.neuron, cell.config.seed) for cell in students] == [("lif", 0), ("lif", 1)]
    assert experiments.FLIP_JITTER < experiments.FLIP_WIDE_JITTER < 1
    for cell in students:
        base = jitter[cell.paired_with.removeprefix("flip-jitter/")]
        assert base.config.output_jitter == experiments.FLIP_JITTER
        assert cell.config == dataclasses.replace(base.config, output_jitter=experiments.FLIP_WIDE_JITTER)
        assert cell.cell_id == base.cell_id.replace("-jitter0.1", "-jitter0.2") != base.cell_id
        assert cell.labels["output_jitter"] == experiments.FLIP_WIDE_JITTER
        assert cell.run_name == f"flip-wide-jitter/{cell.cell_id}" and cell.paper == base.paper
        assert cell.config.teacher == f"runs/{teacher.run_name}"


def test_flip_jitter_epochs_cells_are_flip_jitter_s_lif_students_trained_longer():
    teacher, *students = cells("flip-jitter-epochs")
    assert teacher.run_name == "ann-ceiling/fashion_mnist-ann-0.2" and teacher.config.training == "ann"
    jitter = by_id("flip-jitter")
    assert [(cell.config.neuron, cell.config.seed, cell.config.epochs) for cell in students] == [
        ("lif", seed, epochs) for epochs in experiments.FLIP_JITTER_EPOCHS for seed in (0, 1)]
    for cell in students:
        base = jitter[cell.paired_with.removeprefix("flip-jitter/")]
        assert base.config.epochs < cell.config.epochs
        assert cell.config == dataclasses.replace(base.config, epochs=cell.config.epochs)
        assert cell.cell_id == f"{base.cell_id}-epochs{cell.config.epochs}"
        assert cell.run_name == f"flip-jitter-epochs/{cell.cell_id}" and cell.paper == base.paper
        assert cell.config.teacher == f"runs/{teacher.run_name}"
