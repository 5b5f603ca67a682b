"""RunSpec round-trips and hashes stably; registries answer unknown names with one line."""

import json
import subprocess
import sys

import pytest

from bench.errors import LossbenchError
from bench.spec import RunSpec, load_spec_file, parse_param, varying_keys


def test_spec_round_trip_and_stable_run_id(tmp_path):
    spec = RunSpec(dataset="iris", model="mlp", loss="gce", loss_params={"q": 0.5},
                   schedule="multistep", milestones=[10, 20], epochs=30,
                   noise={"kind": "uniform", "rate": 0.4})
    again = RunSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec and again.run_id == spec.run_id
    # the same id in a fresh process (no hash randomisation in the id)
    code = ("from bench.spec import RunSpec; import json, sys; "
            "print(RunSpec.from_dict(json.loads(sys.argv[1])).run_id)")
    out = subprocess.run([sys.executable, "-c", code, json.dumps(spec.to_dict())],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == spec.run_id
    # what a run computes changes the id; where it runs does not
    assert spec.replace(lr=0.02).run_id != spec.run_id
    assert spec.replace(loss_params={"q": 0.7}).run_id != spec.run_id
    assert spec.replace(device="cpu", threads=2).run_id == spec.run_id


def test_flat_rows_carry_params_and_varying_keys():
    a = RunSpec(dataset="iris", model="mlp", loss="gce", loss_params={"q": 0.5})
    b = a.replace(loss_params={"q": 0.7}, noise={"kind": "pair", "rate": 0.2})
    assert a.flat()["loss_q"] == 0.5 and a.method == "gce(q=0.5)"
    assert set(varying_keys([a, b])) == {"loss_q", "method", "noise_kind", "noise_rate"}


@pytest.mark.parametrize(("change", "field"), [
    ({"lr": -1.0}, "lr"), ({"optimizer": "rmsprop"}, "optimizer"), ({"epochs": 0}, "epochs"),
    ({"schedule": "multistep"}, "milestones"), ({"milestones": [60]}, "milestones"),
    ({"noise": {"flavour": 1}}, "noise"), ({"device": "tpu"}, "device"),
])
def test_bad_spec_fields_name_the_field(change, field):
    with pytest.raises(LossbenchError, match=f"'{field}'"):
        RunSpec(dataset="iris", model="mlp", **change)


def test_spec_file_unknown_key_lists_fields(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("dataset: iris\nmodel: mlp\nlerning_rate: 0.1\n")
    with pytest.raises(LossbenchError, match="unknown field.*lerning_rate.*Known fields"):
        load_spec_file(str(path))
    path.write_text("- {dataset: iris, model: mlp, lr: 0.1}\n- {dataset: iris, model: linear}\n")
    assert [s.model for s in load_spec_file(str(path))] == ["mlp", "linear"]


def test_parse_param_reads_yaml_values():
    assert parse_param("q=0.7", "--loss-param") == ("q", 0.7)
    assert parse_param("boundaries=[0, 0.5]", "--loss-param") == ("boundaries", [0, 0.5])
    with pytest.raises(LossbenchError, match="NAME=VALUE"):
        parse_param("q", "--loss-param")


def test_model_registry():
    from bench.models import create_model, list_models, stacked_form

    d, c = 7, 3
    mlp = create_model("mlp", input_shape=(d,), n_classes=c, seed=0)
    assert sum(p.numel() for p in mlp.parameters()) == d * d + d + d * c + c
    linear = create_model("linear", input_shape=(d,), n_classes=c, seed=0)
    assert sum(p.numel() for p in linear.parameters()) == d * c + c
    assert {"linear", "mlp"} <= set(list_models("tabular"))
    assert stacked_form("mlp", input_shape=(d,), n_classes=c).widths == (d, d, c)
    again = create_model("mlp", input_shape=(d,), n_classes=c, seed=0)
    assert all((p == q).all() for p, q in zip(mlp.parameters(), again.parameters(),
                                              strict=True))
    with pytest.raises(LossbenchError, match="Unknown model 'resnet9000'. Known models: linear"):
        create_model("resnet9000", input_shape=(d,), n_classes=c, seed=0)


def test_dataset_registry_lists_the_collection():
    from bench.data import get_dataset, list_datasets, list_protocols

    names = list_datasets("uci")
    assert len(names) == 121 and "miniboone" in names and names == sorted(names)
    assert {"klambauer", "klambauer4", "klambauer_swapped", "holdout", "kfold4"} <= set(
        list_protocols("uci"))
    with pytest.raises(LossbenchError, match="Unknown dataset 'irs'. Known datasets: abalone"):
        get_dataset("irs")


def test_array_dataset_protocols():
    import numpy as np

    from bench.data import ArrayDataset

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3)).astype(np.float32)
    y = np.repeat(np.arange(4), 25)
    ds = ArrayDataset("toy", X, y, 4, test_idx=np.arange(80, 100))
    (tr, va, te), = ds.splits("official")
    assert set(te) == set(range(80, 100)) and not set(tr) & set(va)
    assert len(tr) + len(va) == 80
    (tr2, va2, te2), = ds.splits("random")
    assert sorted(np.concatenate([tr2, va2, te2]).tolist()) == list(range(100))
    assert (ds.splits("random")[0][0] == tr2).all()  # seeded: the same every call
    with pytest.raises(LossbenchError, match="does not apply to arrays dataset"):
        ds.splits("klambauer")
