"""Benchmark of the vancomycin dose engine (issue 6).

Prints, for a two-compartment case (Goti 2018) with four doses and two levels:

1. MAP fit time, median and 99th percentile;
2. recommendation time (regimen search with posterior PTA);
3. steady-state AUC24 (and trough) of 10,000 virtual patients;
4. the same MAP fit done by a plain scipy implementation (``solve_ivp`` for the ODEs, L-BFGS-B with
   finite-difference gradients), measured in the same run, and the speed ratio;
5. a 100,000-virtual-patient PTA batch job (issue 13) computed in this process (the baseline), then run as a
   Celery group on 1 and on 2 real worker processes (PostgreSQL and Redis: ``DATABASE_URL``/``REDIS_URL`` or
   the local servers), with the time from queueing to the stored result and whether each result equals the
   single-process one. Skipped, saying why, when PostgreSQL or Redis is not there (``--no-batch`` skips it).

Runs on one core (thread pools of the linear-algebra libraries are pinned to 1 before numpy loads; each
worker process is pinned the same way) and finishes in about a minute. Usage: ``python bench/dosing.py``.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

# one core: the BLAS/OpenMP thread pools read these when numpy is first imported, so they come first
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402
from scipy.integrate import solve_ivp  # noqa: E402
from scipy.optimize import minimize  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dosing.engine.case import run_case  # noqa: E402
from dosing.engine.estimation import Dose, Observation, Subject, fit_map  # noqa: E402
from dosing.engine.forecast import Component  # noqa: E402
from dosing.engine.models import load_model  # noqa: E402
from dosing.engine.population import population_steady_state, sample_etas  # noqa: E402
from dosing.engine.recommend import recommend  # noqa: E402
from dosing.engine.simulate import pta_run, pta_spec  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

MAP_REPEATS = 300
RECOMMEND_REPEATS = 50
ODE_REPEATS = 5
N_VIRTUAL = 10_000

TARGET_MAP_MS = 10.0
TARGET_RECOMMEND_MS = 50.0
TARGET_BATCH_S = 2.0

BATCH_SPEC = {
    "model": "goti_2018",
    "population": "adult_general",
    "n_patients": 100_000,
    "chunk_size": 5000,
    "seed": 2026,
    "regimens": [
        {"dose_mg": 750.0, "interval_h": 12.0, "infusion_h": 1.0},
        {"dose_mg": 1000.0, "interval_h": 12.0, "infusion_h": 1.0},
        {"dose_mg": 1250.0, "interval_h": 12.0, "infusion_h": 1.5},
        {"dose_mg": 1500.0, "interval_h": 24.0, "infusion_h": 1.5},
    ],
}


def bench_subject() -> Subject:
    """Goti 2018, 64-year-old man, 82 kg, creatinine 1.1 mg/dL; 1000 mg q12h over 1 h x 4; trough and peak."""
    model = load_model("goti_2018")
    env = model.covariate_env({"WT": 82.0, "AGE": 64.0, "MALE": 1.0, "SCR": 1.1})
    doses = tuple(Dose(12.0 * k, 1000.0, 1.0) for k in range(4))
    levels = (Observation(35.5, 14.2), Observation(38.0, 29.5))
    return Subject(model, (env,), (), doses, (), levels)


def ode_map_fit(subject: Subject) -> np.ndarray:
    """The same MAP fit by a plain scipy implementation: ODEs integrated by solve_ivp between dose events."""
    model = subject.model
    tv = model.typical_values(subject.envs[0])
    omega_inv = np.linalg.inv(model.omega)
    a, b = model.error.additive_sd_mg_per_l, model.error.proportional_sd
    y = np.array([o.conc_mg_per_l for o in subject.observations])
    obs_times = [o.time_h for o in subject.observations]
    doses = subject.doses
    breaks = sorted({0.0, *(d.time_h for d in doses), *(d.end_h for d in doses), *obs_times})

    def predict(eta: np.ndarray) -> np.ndarray:
        cl, v1 = tv["CL"] * np.exp(eta[0]), tv["V1"] * np.exp(eta[1])
        q, v2 = tv["Q"], tv["V2"] * np.exp(eta[2])

        def rhs(t: float, amt: np.ndarray, rate: float) -> list[float]:
            c1, c2 = amt[0] / v1, amt[1] / v2
            return [rate - cl * c1 - q * (c1 - c2), q * (c1 - c2)]

        state = np.zeros(2)
        out = {}
        for t0, t1 in itertools.pairwise(breaks):
            rate = sum(d.amount_mg / d.duration_h for d in doses if d.time_h <= t0 < d.end_h)
            sol = solve_ivp(rhs, (t0, t1), state, args=(rate,), rtol=1e-8, atol=1e-8)
            state = sol.y[:, -1]
            out[t1] = state[0] / v1
        return np.array([out[t] for t in obs_times])

    def ofv(eta: np.ndarray) -> float:
        f = predict(eta)
        var = a**2 + (b * f) ** 2
        return float(np.sum((y - f) ** 2 / var + np.log(var)) + eta @ omega_inv @ eta)

    res = minimize(ofv, np.zeros(3), method="L-BFGS-B", options={"eps": 1e-7})
    return np.asarray(res.x)


def timed(fn: Callable[[], object], repeats: int) -> np.ndarray:
    out = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        fn()
        out[i] = time.perf_counter() - t0
    return out


def main() -> int:
    subject = bench_subject()
    fit = fit_map(subject)  # warm-up, and the reference answer
    map_s = timed(lambda: fit_map(subject), MAP_REPEATS)
    component = Component(subject, fit)
    recommend([component], weight_kg=82.0, now_h=38.0)
    rec_s = timed(lambda: recommend([component], weight_kg=82.0, now_h=38.0), RECOMMEND_REPEATS)

    model = subject.model
    rng = np.random.default_rng(2026)
    patients = {
        "WT": rng.uniform(45.0, 140.0, N_VIRTUAL),
        "AGE": rng.uniform(18.0, 95.0, N_VIRTUAL),
        "MALE": rng.integers(0, 2, N_VIRTUAL).astype(float),
        "SCR": rng.lognormal(np.log(1.0), 0.4, N_VIRTUAL),
    }
    eta = sample_etas(model, N_VIRTUAL, random_state=2026)

    def batch() -> None:
        population_steady_state(model, patients, eta, dose_mg=1000.0, infusion_h=1.0, interval_h=12.0)

    batch()
    batch_s = timed(batch, 5)
    ss = population_steady_state(model, patients, eta, dose_mg=1000.0, infusion_h=1.0, interval_h=12.0)
    pta = float(np.mean((ss.auc24_mg_h_per_l >= 400) & (ss.auc24_mg_h_per_l <= 600)))

    case = {
        "model": "goti_2018",
        "patient": {
            "age_years": 64,
            "sex": "male",
            "weight_kg": 82,
            "creatinine": {"value": 1.1, "unit": "mg/dL"},
        },
        "doses": [{"time": 0, "amount_mg": 1000, "duration_h": 1, "repeat": {"count": 3, "interval_h": 12}}],
        "levels": [{"time": 35.5, "conc_mg_per_l": 14.2}, {"time": 38.0, "conc_mg_per_l": 29.5}],
    }
    run_case(case)
    case_s = timed(lambda: run_case(case), 20)

    ode_eta = ode_map_fit(subject)
    ode_s = timed(lambda: ode_map_fit(subject), ODE_REPEATS)

    med_map_ms = 1e3 * float(np.median(map_s))
    p99_map_ms = 1e3 * float(np.percentile(map_s, 99))
    med_rec_ms = 1e3 * float(np.median(rec_s))
    med_batch_s = float(np.median(batch_s))
    med_ode_ms = 1e3 * float(np.median(ode_s))

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    print("Vancomycin dose engine benchmark (one core)")
    print(f"numpy {np.__version__}, scipy {__import__('scipy').__version__}, python {sys.version.split()[0]}")
    print("case: Goti 2018 two-compartment, 4 doses of 1000 mg q12h over 1 h, levels at 35.5 h and 38 h")
    print(f"  MAP eta = {np.array2string(fit.eta, precision=5)}, OFV {fit.ofv:.4f}, status {fit.status}")
    print(
        f"MAP fit ({MAP_REPEATS} runs):   median {med_map_ms:7.2f} ms   p99 {p99_map_ms:7.2f} ms"
        f"   target < {TARGET_MAP_MS:g} ms median: {verdict(med_map_ms < TARGET_MAP_MS)}"
    )
    print(
        f"recommendation ({RECOMMEND_REPEATS} runs): median {med_rec_ms:7.2f} ms"
        f"   target < {TARGET_RECOMMEND_MS:g} ms: {verdict(med_rec_ms < TARGET_RECOMMEND_MS)}"
    )
    print(
        f"{N_VIRTUAL} virtual patients, steady-state AUC24 + trough: median {med_batch_s * 1e3:7.2f} ms"
        f"   target < {TARGET_BATCH_S:g} s: {verdict(med_batch_s < TARGET_BATCH_S)}"
        f"   (PTA of 1000 mg q12h for AUC24 400-600: {pta:.3f})"
    )
    print(
        f"whole JSON case (fit, forecast with 500 posterior samples, AUCs, recommendation): "
        f"median {1e3 * float(np.median(case_s)):7.2f} ms"
    )
    print(
        f"plain scipy solve_ivp MAP fit ({ODE_REPEATS} runs): median {med_ode_ms:9.2f} ms"
        f"   eta = {np.array2string(ode_eta, precision=5)}"
    )
    print(f"speed ratio, scipy ODE MAP / engine MAP (medians): {med_ode_ms / med_map_ms:.0f}x")
    print(f"max |eta difference| engine vs scipy ODE fit: {float(np.max(np.abs(ode_eta - fit.eta))):.1e}")
    ok = med_map_ms < TARGET_MAP_MS and med_rec_ms < TARGET_RECOMMEND_MS and med_batch_s < TARGET_BATCH_S
    return 0 if ok else 1


def bench_batch_workers() -> None:
    """The 100,000-patient PTA job: one process, then a Celery group on 1 and on 2 worker processes."""
    spec = pta_spec(BATCH_SPEC)
    pta_run(spec)  # warm-up
    single_s = timed(lambda: pta_run(spec), 3)
    expected = pta_run(spec)
    print(
        f"PTA job, {spec.n_patients} virtual patients x {len(spec.regimens)} regimens in "
        f"{spec.n_chunks} chunks (Goti 2018, adult_general): "
        f"single process median {float(np.median(single_s)):.2f} s"
    )
    line = ", ".join(
        f"{r['dose_mg']:g} mg q{r['interval_h']:g}h {r['pta']:.3f}" for r in expected["regimens"]
    )
    print(f"  PTA (AUC24 400-600): {line}")

    from _local import bench_database_url  # bench/ is on the path: it holds this script

    from hospital.devserver import dev_environment

    env = dev_environment()
    env["DATABASE_URL"] = bench_database_url(env)
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/3")
    env["LOG_LEVEL"] = "WARNING"
    queue = f"bench-batch-{uuid.uuid4().hex[:8]}"
    env["DOSING_BATCH_QUEUE"] = queue
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if migrate.returncode != 0:
        print(f"  workers: skipped (no database: {migrate.stderr.strip().splitlines()[-1][:200]})")
        return
    os.environ.update(env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")
    import django

    django.setup()
    from dosing.batch import services
    from dosing.batch.models import BatchJob
    from hospital.celery import app
    from medcard.models import User

    user, _ = User.objects.get_or_create(username="bench-pharmacist", defaults={"kind": User.Kind.STAFF})
    for n_workers in (1, 2):
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "hospital",
                    "worker",
                    "--queues",
                    queue,
                    "--concurrency",
                    "1",
                    "--hostname",
                    f"{queue}-{n_workers}-{k}@%h",
                    "--without-gossip",
                    "--without-mingle",
                    "--loglevel",
                    "WARNING",
                ],
                cwd=ROOT,
                env=env,
                start_new_session=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for k in range(n_workers)
        ]
        try:
            deadline = time.monotonic() + 120
            while len(app.control.ping(timeout=1.0) or []) < n_workers and time.monotonic() < deadline:
                pass
            started = time.perf_counter()
            job = services.batch_job_create(user=user, kind="pta", title="bench", spec=dict(BATCH_SPEC))
            while not BatchJob.objects.filter(pk=job.pk, status__in=["done", "failed"]).exists():
                if time.perf_counter() - started > 600:
                    break
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            job.refresh_from_db()
            same = job.status == "done" and job.result == expected
            plural = "es" if n_workers > 1 else ""
            print(
                f"  {n_workers} worker process{plural}: {elapsed:6.2f} s from queueing to the stored result "
                f"({job.status}); equals the single-process result: {'yes' if same else 'NO'}"
            )
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(timeout=30)


# --- The pharmacist's page: fit + recommendation through Django (issue 13) ------------------------------

PAGE_REPEATS = 20
TARGET_PAGE_P95_MS = 300.0


def page_bench() -> int:
    """Server time of the course page's fit + recommendation through Django's test client, on a throw-away
    test database (SQLite, or DATABASE_URL's server): the re-fit request (fit, recommendation, curves, the
    per-level estimates, stored) followed by the course page it redirects to, and the page previewing an
    edited regimen. Baseline in the same run: the engine call alone (``dosing.calculation.calculate``)."""
    import datetime as dt
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hospital.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    settings.ALLOWED_HOSTS = ["testserver", *settings.ALLOWED_HOSTS]
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        import time_machine

        from dosing import services
        from medcard import roles
        from medcard.services import staff_create

        shanghai = ZoneInfo("Asia/Shanghai")
        start = dt.datetime(2026, 11, 20, 8, 0, tzinfo=shanghai)
        lines = []
        with time_machine.travel(dt.datetime(2026, 11, 21, 22, 0, tzinfo=shanghai), tick=False):
            pharmacist = staff_create(
                username="bench-pharm",
                password="bench-Passw0rd-9",  # noqa: S106 (a throw-away test database)
                display_name="bench",
                role=roles.PHARMACIST,
            )
            client = Client()
            client.force_login(pharmacist)
            for model in ("goti_2018", "auto"):
                details = services.CourseDetails(
                    sex="male",
                    age_years=Decimal(64),
                    weight_kg=Decimal(82),
                    height_cm=Decimal(176),
                    creatinine_value=Decimal(97),
                    creatinine_unit="umol/L",
                    creatinine_on=start.date(),
                    initials="BM",
                    model_choice=model,
                )
                course = services.course_create(actor=pharmacist, details=details)
                services.doses_add(
                    course=course,
                    actor=pharmacist,
                    lines=[
                        services.DoseLine(start, Decimal(2000), Decimal(2)),
                        services.DoseLine(
                            start + dt.timedelta(hours=12), Decimal(1000), Decimal(1), 2, Decimal(12)
                        ),
                    ],
                )
                for hours, conc in ((35.5, "14.2"), (37.0, "31.5")):
                    services.level_add(
                        course=course,
                        actor=pharmacist,
                        drawn_at=start + dt.timedelta(hours=hours),
                        conc_mg_per_l=Decimal(conc),
                    )
                url = f"/dosing/courses/{course.pk}/"
                preview = {
                    "dose_mg": "1250",
                    "interval_h": "12",
                    "infusion_h": "1.5",
                    "start": "2026-11-22T08:00",
                }

                def refit_and_page(url: str = url) -> None:
                    assert client.post(url + "refit/").status_code == 302
                    assert client.get(url).status_code == 200

                def preview_page(url: str = url, preview: dict[str, str] = preview) -> None:
                    assert client.get(url, preview).status_code == 200

                def engine_only(course: object = course) -> None:
                    services.course_calculate(course=course)  # type: ignore[arg-type]

                for fn in (refit_and_page, preview_page, engine_only):
                    fn()  # warm-up
                n_models = len(services.course_calculate(course=course)[0].result["models"])
                for label, fn in (
                    ("re-fit + course page", refit_and_page),
                    ("regimen preview page", preview_page),
                    ("baseline: engine call alone", engine_only),
                ):
                    ms = 1e3 * timed(fn, PAGE_REPEATS)
                    lines.append(
                        (
                            f"{model} ({n_models} model(s))",
                            label,
                            float(np.median(ms)),
                            float(np.percentile(ms, 95)),
                        )
                    )
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(
        f"Course page, fit + recommendation through Django's test client ({PAGE_REPEATS} runs each, one core)"
    )
    ok = True
    for model, label, p50, p95 in lines:
        verdict = ""
        if label != "baseline: engine call alone":
            passed = p95 < TARGET_PAGE_P95_MS
            ok &= passed  # one model and the 8-model average alike
            verdict = f"   target p95 < {TARGET_PAGE_P95_MS:g} ms: {'PASS' if passed else 'FAIL'}"
        print(f"  {model:26s} {label:28s} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms{verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    status = main()
    if "--no-batch" not in sys.argv:
        bench_batch_workers()
    # last: it sets Django up on a throw-away test database of whatever database the run is configured with
    raise SystemExit(page_bench() | status)
