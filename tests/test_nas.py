"""SFTNAS search method (harcore.nas): DCS/STE, Gumbel choice, search space, derived-model cost, budget,
resume."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F

from harcore import models
from harcore.cost import profile
from harcore.nas import Arch, BudgetError, SearchConfig, derive, search
from harcore.nas.dcs import DCS, ste_binarize
from harcore.nas.derive import arch_inputs, build, check_budget, cost_space, smallest_arch
from harcore.nas.gumbel import gumbel_choice, temperature
from harcore.nas.hw_loss import hw_loss, hw_terms, num_stride2_layers
from harcore.nas.supernet import Supernet

torch.set_num_threads(1)
BACKBONES = ("tinyhar", "deepconvlstm", "attend_discriminate")


# -- DCS / STE -----------------------------------------------------------------------------------

def test_ste_forward_is_binary_at_half_and_backward_is_identity():
    v = torch.tensor([0.2, 0.5, 0.51, 0.9, -0.3, 1.7], requires_grad=True)
    b = ste_binarize(v)
    assert b.tolist() == [0.0, 0.0, 1.0, 1.0, 0.0, 1.0]   # v > 0.5 (0.5 itself is pruned, Eq. 3)
    w = torch.tensor([1.0, -2.0, 3.0, 0.5, 7.0, -1.0])
    (b * w).sum().backward()
    assert torch.equal(v.grad, w)                         # dL/dv = dL/db (Eq. 4)


def test_ste_keeps_the_largest_entry_when_all_are_below_threshold():
    v = torch.tensor([0.1, 0.4, 0.3], requires_grad=True)
    assert ste_binarize(v).tolist() == [0.0, 1.0, 0.0]
    assert ste_binarize(v, keep_one=False).tolist() == [0.0, 0.0, 0.0]


def test_dcs_layer_masks_sensor_channels_and_passes_gradient_to_v():
    dcs = DCS((1, 4, 1), init=0.75)
    with torch.no_grad():
        dcs.v[0, 2, 0] = 0.3
    x = torch.randn(2, 4, 8)
    y = dcs(x)
    assert torch.equal(y[:, 2], torch.zeros(2, 8)) and torch.equal(y[:, [0, 1, 3]], x[:, [0, 1, 3]])
    y.sum().backward()
    # d(sum x*b)/db_c = sum over batch and time of x[:, c]; STE hands it to v unchanged, pruned channel included
    torch.testing.assert_close(dcs.v.grad.reshape(-1), x.sum((0, 2)))
    assert dcs.kept() == [0, 1, 3]
    with pytest.raises(ValueError, match="threshold"):
        DCS((3,), init=0.5)


# -- Gumbel-max / Gumbel-softmax --------------------------------------------------------------------

def test_gumbel_max_frequencies_match_softmax_alpha():
    logits = torch.tensor([0.5, -1.0, 1.2, 0.0, -0.3])
    g = torch.Generator().manual_seed(123)
    n = 20_000
    counts = torch.zeros(5)
    for _ in range(n):
        p = gumbel_choice(logits, tau=3.0, generator=g)
        assert p.sum().item() == pytest.approx(1.0) and sorted(p.tolist())[-1] == pytest.approx(1.0)
        counts += p.detach()
    freq = counts / n
    expect = torch.softmax(logits, 0)
    # binomial std <= sqrt(0.25 / n) = 0.0035; 5 sigma
    assert torch.max((freq - expect).abs()) < 0.018, (freq, expect)


def test_gumbel_choice_is_seeded_one_hot_forward_with_softmax_gradient():
    logits = torch.tensor([0.1, 0.7, -0.2], requires_grad=True)
    p1 = gumbel_choice(logits, 2.0, torch.Generator().manual_seed(5))
    p2 = gumbel_choice(logits, 2.0, torch.Generator().manual_seed(5))
    assert torch.equal(p1, p2)
    w = torch.tensor([1.0, 2.0, 3.0])
    (p1 * w).sum().backward()
    # recompute the Gumbel noise and the Eq. 7 softmax by hand; the gradient is its Jacobian
    u = torch.rand(3, generator=torch.Generator().manual_seed(5)).clamp(1e-20, 1 - 1e-7)
    g = -torch.log(-torch.log(u))
    z = logits.detach().clone().requires_grad_()
    (F.softmax((z + g) / 2.0, 0) * w).sum().backward()
    torch.testing.assert_close(logits.grad, z.grad)
    assert int(p1.argmax()) == int(torch.argmax(logits.detach() + g))


def test_temperature_schedule():
    assert temperature(0) == 5.0
    assert temperature(20) == pytest.approx(5.0 * math.exp(-1.0))


# -- search space -----------------------------------------------------------------------------------

@pytest.mark.sanitize
@pytest.mark.parametrize("s0", [8, 37, 64, 128, 196, 256])
def test_space_has_n_stride2_layers_and_identity_only_where_legal(s0):
    net = Supernet("deepconvlstm", 3, s0, 4, filters=4)
    n = math.floor(math.log2(s0 / 4))
    assert num_stride2_layers(s0) == n
    strides = [l.stride for l in net.layout.layers]
    assert strides.count(2) == n and len(strides) == 2 * n and strides == [2, 1] * n
    assert net.layout.lengths[-1] >= 4
    for i, layer in enumerate(net.layout.layers):
        # conv k in {1,3,5,7} everywhere, identity on stride-1 layers only (never on the first layer)
        assert len(net.candidates[i]) == 4 and layer.kernels == (1, 3, 5, 7)
        assert layer.identity == (layer.stride == 1 and i > 0)
        assert layer.num_candidates == (5 if layer.identity else 4)
    with pytest.raises(ValueError, match="seq_len=7"):
        Supernet("tinyhar", 3, 7, 4)


def test_identity_arch_on_a_stride2_layer_is_rejected():
    net = Supernet("tinyhar", 3, 32, 4, filters=4)
    a = smallest_arch("tinyhar", 3, 32, 4, net.layout)
    a.layers[0] = {"op": "identity", "stride": 1}
    with pytest.raises(ValueError, match=r"arch.layers\[0\]"):
        arch_inputs(net.layout, a)
    with pytest.raises(ValueError, match=r"arch.layers\[0\] must be a conv"):
        build(a)


# -- the derived model vs the cost model ----------------------------------------------------------

def random_arch(net: Supernet, rng: random.Random) -> Arch:
    with torch.no_grad():
        g = torch.Generator().manual_seed(rng.randrange(10**6))
        net.alpha.copy_(torch.randn(net.alpha.shape, generator=g))
        net.v.copy_(torch.rand(net.v.shape, generator=g))
        net.sensor_dcs.v.copy_(torch.rand(net.sensor_dcs.v.shape, generator=g))
    return derive(net)


@pytest.mark.sanitize
@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("seed", range(3))
def test_derived_model_macs_params_sram_equal_the_cost_model(backbone, seed):
    rng = random.Random(seed)
    c0, s0 = rng.choice([(9, 128), (6, 64), (3, 50)])
    net = Supernet(backbone, c0, s0, 5, filters=rng.choice([4, 6]))
    arch = random_arch(net, rng)
    model = build(arch, net)
    assert isinstance(model, models.sftnas.SftnasNet)
    p = profile(model, (c0, s0))
    # hw terms (C++) of the binary masks / one-hot choices that select the arch, tail fitted by the cost model
    space = cost_space(net.layout, arch, net.filters)
    b0, masks, probs = arch_inputs(net.layout, arch)
    t = hw_terms(space, b0, masks, probs, scale=1.0, mem_limit=1.0)
    assert float(t.macs) == p.total.macs
    assert float(t.pmem) == p.total.peak_sram
    # the searched stage's MACs alone equal the stage terms (no tail) exactly
    t0 = hw_terms(net.layout, b0, masks, probs, scale=1.0, mem_limit=1.0)
    assert float(t0.macs) == sum(r.macs for r in p.layers if r.name.startswith("stage_"))
    # parameters: the cost model's count is torch's, and the stage is what the arch says
    assert p.total.params == sum(q.numel() for q in model.parameters())
    f_in, stage = 1, 0
    for l in arch.layers:
        if l["op"] == "conv":
            stage += l["filters"] * f_in * l["kernel"] + l["filters"] + 2 * l["filters"]  # conv w, bias, BN
            f_in = l["filters"]
    assert sum(r.params for r in p.layers if r.name.startswith("stage_")) == stage
    # an ordinary, reloadable registry model
    again = models.create("sftnas", c0, s0, 5, arch=model.arch, backbone=backbone)
    again.load_state_dict(model.state_dict())
    x = torch.randn(2, c0, s0)
    model.eval(), again.eval()
    torch.testing.assert_close(model(x), again(x))


@pytest.mark.sanitize
def test_derived_deepconvlstm_computes_what_the_supernet_path_computes():
    # pruned sensors and filters reach DeepConvLSTM's LSTM as zero features, so removing them is exact
    net = Supernet("deepconvlstm", 6, 64, 4, filters=5)
    arch = random_arch(net, random.Random(3))
    assert len(arch.channels) < 6
    model = build(arch, net)
    net.eval(), model.eval()
    x = torch.randn(3, 6, 64)
    torch.testing.assert_close(model(x), net(x)[0], rtol=1e-4, atol=1e-5)


def test_save_load_roundtrip(tmp_path):
    net = Supernet("tinyhar", 4, 32, 3, filters=4)
    model = build(random_arch(net, random.Random(1)), net)
    models.sftnas.save(model, tmp_path / "m.pt")
    back = models.sftnas.load(tmp_path / "m.pt")
    model.eval(), back.eval()
    x = torch.randn(2, 4, 32)
    torch.testing.assert_close(model(x), back(x))


@pytest.mark.sanitize
def test_hw_loss_gradient_reaches_dcs_and_alpha():
    net = Supernet("tinyhar", 9, 128, 6, filters=8)
    space = cost_space(net.layout, derive(net), net.filters)
    probs = net.sample(5.0, torch.Generator().manual_seed(0))
    _, b0, masks = net(torch.randn(2, 9, 128), probs)
    loss = hw_loss(space, b0, masks, probs, scale=1e5, mem_limit=1000.0, beta1=1.0, beta2=1.0)
    loss.backward()
    assert float(loss.detach()) > 0
    assert net.v.grad is not None and net.v.grad.abs().sum() > 0
    assert net.sensor_dcs.v.grad.abs().sum() > 0 and net.alpha.grad.abs().sum() > 0


def test_all_paths_forward_equals_the_single_path_and_gives_every_alpha_a_ce_gradient():
    # Eq. 6 in full: with a one-hot p the value is the sampled path's, but the cross-entropy now reaches the
    # logits of every layer; on the single path BatchNorm's scale invariance leaves layers before the last ~0
    torch.manual_seed(0)
    net = Supernet("tinyhar", 9, 64, 4, filters=6)
    x, y = torch.randn(32, 9, 64), torch.randint(0, 4, (32,))
    probs = net.sample(5.0, torch.Generator().manual_seed(0))
    grads = {}
    for all_paths in (False, True):
        net.zero_grad(set_to_none=True)
        torch.manual_seed(1)  # the same dropout masks in the tail
        logits, _, _ = net(x, probs, all_paths=all_paths)
        F.cross_entropy(logits, y).backward(retain_graph=True)
        grads[all_paths] = [g.abs().max() for g in net.layout.split_probs(net.alpha.grad)]
        if not all_paths:
            single = logits.detach()
        else:
            torch.testing.assert_close(logits.detach(), single)
    assert all(g > 1e-5 for g in grads[True])
    assert max(grads[False][:-2]) < 1e-2 * min(grads[True][:-2])


# -- budget ------------------------------------------------------------------------------------------

@pytest.mark.sanitize
def test_impossible_budget_names_the_figures():
    net = Supernet("tinyhar", 9, 128, 6)
    smallest = smallest_arch("tinyhar", 9, 128, 6, net.layout)
    floor = profile(build(smallest), (9, 128)).total
    assert check_budget(smallest, sram=floor.peak_sram)["peak_sram"] == floor.peak_sram
    with pytest.raises(BudgetError, match=rf"--sram 100B is below {floor.peak_sram:,}B, the peak sram"):
        check_budget(smallest, sram=100)
    with pytest.raises(BudgetError, match=rf"--flash 1,000B is below {floor.flash:,}B"):
        check_budget(smallest, flash=1000)
    with pytest.raises(BudgetError, match="--macs"):
        check_budget(smallest, macs=10)


# -- search: resume ----------------------------------------------------------------------------------

def tiny_data(seed=0, n=96, c=3, t=32, k=3):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    x = torch.randn(n, c, t, generator=g) * 0.5
    x[:, 0] += y[:, None].float()  # learnable
    return (x.numpy(), y.numpy())


def tiny_cfg(**kw):
    base = dict(backbone="deepconvlstm", filters=4, epochs=3, batch_size=32, lr_w=1e-2, sram=2000, progress=False,
                tail={"lstm_units": 8, "lstm_layers": 1})
    base.update(kw)
    return SearchConfig(**base)


@pytest.mark.sanitize
def test_interrupted_search_resumes_exactly(tmp_path):
    train, val = tiny_data(0), tiny_data(1, n=48)
    full = search(train, val, tiny_cfg(), run_dir=tmp_path / "a")
    stop = search(train, val, tiny_cfg(), run_dir=tmp_path / "b", on_epoch_end=lambda r: r["epoch"] == 1)
    assert stop.epochs_run == 1 and (tmp_path / "b" / "search_last.pt").exists()
    resumed = search(train, val, tiny_cfg(), run_dir=tmp_path / "b", resume=True)
    assert resumed.resumed_from_epoch == 1 and resumed.epochs_run == 3
    strip = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert strip(resumed.history) == strip(full.history)
    for (k, a), (_, b) in zip(full.supernet.state_dict().items(), resumed.supernet.state_dict().items()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="config.beta1"):
        search(train, val, tiny_cfg(beta1=0.5), run_dir=tmp_path / "b", resume=True)
    # a flash limit only selects among the finished epochs: a finished search re-selects under a new one
    tight = min(r["flash"] for r in full.history)
    again = search(train, val, tiny_cfg(flash=tight), run_dir=tmp_path / "b", resume=True)
    assert again.epochs_run == 3 and again.history == resumed.history
    assert again.arch.to_dict() == next(r["arch_dict"] for r in reversed(full.history) if r["flash"] <= tight)


def test_search_resume_refuses_a_damaged_checkpoint_and_names_every_changed_field(tmp_path):
    from harcore.errors import CheckpointError
    from harcore.nas.search import check_resumable

    train, val = tiny_data(0, n=48), tiny_data(1, n=24)
    search(train, val, tiny_cfg(epochs=1), run_dir=tmp_path)
    ck = tmp_path / "search_last.pt"
    assert check_resumable(tmp_path, tiny_cfg(epochs=1, progress=True)) == 1
    with pytest.raises(CheckpointError) as e:
        search(train, val, tiny_cfg(epochs=1, beta1=0.5, lr_w=1e-3), run_dir=tmp_path, resume=True)
    assert "config.beta1" in str(e.value) and "config.lr_w" in str(e.value) and str(ck) in str(e.value)
    with pytest.raises(CheckpointError, match=r"n_train: .* was written with 48, resuming with 47"):
        search((train[0][:47], train[1][:47]), val, tiny_cfg(epochs=1), run_dir=tmp_path, resume=True)
    ck.write_bytes(ck.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="damaged or not a harcore checkpoint") as e:
        search(train, val, tiny_cfg(epochs=1), run_dir=tmp_path, resume=True)
    assert str(ck) in str(e.value)


def test_pick_arch_falls_back_to_the_latest_epoch_within_the_limits():
    from harcore.nas.search import pick_arch

    net = Supernet("tinyhar", 4, 32, 3, filters=4)
    a = [random_arch(net, random.Random(i)) for i in range(3)]
    hist = [{"epoch": i + 1, "macs": m, "peak_sram": 100, "arch_dict": x.to_dict()}
            for i, (m, x) in enumerate(zip((900, 1100, 1200), a))]
    cfg = SearchConfig(macs=1000, sram=None)
    arch, ep = pick_arch(hist, a[2], cfg)
    assert ep == 1 and arch.to_dict() == a[0].to_dict()
    assert pick_arch(hist, a[2], SearchConfig(macs=None, sram=None)) == (a[2], 3)
    assert pick_arch(hist[1:], a[2], cfg) == (a[2], 3)  # nothing fits: the final one (the fit stage reports it)
    # a flash limit selects too (no loss term: the weights' flash is not differentiable in the paper's loss)
    for rec, fl in zip(hist, (500, 300, 400)):
        rec["flash"] = fl
    arch, ep = pick_arch(hist, a[2], SearchConfig(macs=None, sram=None, flash=350))
    assert ep == 2 and arch.to_dict() == a[1].to_dict()
    assert pick_arch(hist, a[2], SearchConfig(macs=None, sram=None, flash=400)) == (a[2], 3)


def test_search_under_a_mac_limit_returns_an_architecture_within_it_when_one_was_visited():
    train, val = tiny_data(0), tiny_data(1, n=48)
    free = search(train, val, tiny_cfg())
    limit = min(r["macs"] for r in free.history) + 1  # some epoch's architecture fits
    r = search(train, val, tiny_cfg(macs=limit, beta_macs=1.0))  # the hinge runs while sampled MACs exceed it
    assert all("arch_dict" in h for h in r.history)
    fitting = [h for h in r.history if h["macs"] <= limit]
    if fitting:
        assert r.arch_epoch == fitting[-1]["epoch"]
        assert profile(build(r.arch), (r.arch.in_channels, r.arch.seq_len)).total.macs <= limit
    else:
        assert r.arch_epoch == r.epochs_run


def test_the_hardware_term_prunes_sensors_and_filters_in_a_search():
    """Through the whole search loop (no --sram: L_Mem = inf), a dominant beta1 closes DCS gates that the
    cross-entropy alone keeps: fewer sensors, and filters pruned in the searchable stage."""
    train, val = tiny_data(0), tiny_data(1, n=48)

    def run(beta1):
        cfg = SearchConfig(backbone="tinyhar", filters=4, epochs=4, batch_size=32, lr_w=1e-2, lr_v=5e-2, sram=None,
                           beta1=beta1, seed=1, progress=False)
        a = search(train, val, cfg).arch
        convs = [l for l in a.layers if l["op"] == "conv"]
        return a, len(a.channels), sum(len(l["kept"]) for l in convs) / (4 * len(convs))

    a0, sensors0, kept0 = run(0.0)
    a1, sensors1, kept1 = run(100.0)
    assert 0 in a0.channels  # the cross-entropy keeps the one informative sensor
    assert sensors1 == 1 < sensors0
    assert kept1 < kept0 and min(len(l["kept"]) for l in a1.layers if l["op"] == "conv") < 4


def test_search_sizes_the_head_by_the_dataset_classes_not_the_highest_label_seen():
    # the last classes of a dataset may be absent from train/val (a subset of subjects or activities): the head
    # still needs every class, else later stages that score with the dataset's class list fail
    from harcore.errors import DataError

    train, val = tiny_data(0, n=48), tiny_data(1, n=24)  # labels 0..2
    r = search(train, val, tiny_cfg(epochs=1), num_classes=5)
    assert r.arch.num_classes == 5 and r.supernet.num_classes == 5
    assert search(train, val, tiny_cfg(epochs=1)).arch.num_classes == 3
    with pytest.raises(DataError, match=r"labels: train/val labels span 0\.\.2, outside the dataset's 2 classes"):
        search(train, val, tiny_cfg(epochs=1), num_classes=2)


def test_a_searched_arch_is_also_taken_as_the_path_of_its_arch_json(tmp_path):
    # what `harcore distill --student sftnas --student-option arch=runs/x/arch.json` passes: a path
    net = Supernet("tinyhar", 6, 64, 4, filters=5)
    arch = random_arch(net, random.Random(1))
    (tmp_path / "arch.json").write_text(arch.to_json())
    a = models.create("sftnas", arch=str(tmp_path / "arch.json"))           # sizes from the file
    b = models.create("sftnas", 6, 64, 4, arch=arch)
    assert a.arch == b.arch and a.tail_cfg == b.tail_cfg
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
    with pytest.raises(ValueError, match=r"arch file '.*nope.json' cannot be read"):
        models.create("sftnas", 6, 64, 4, arch=str(tmp_path / "nope.json"))
    (tmp_path / "bad.json").write_text('{"channels": [0],\n "layers": [}')
    with pytest.raises(ValueError, match=r"arch file '.*bad.json', line 2: not JSON"):
        models.create("sftnas", 6, 64, 4, arch=tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="holds a list, not an architecture"):
        models.create("sftnas", 6, 64, 4, arch=str(tmp_path / "list.json"))
