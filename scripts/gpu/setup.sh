# Sourced by the scripts in scripts/gpu/: the environment of a copy of the repository on a machine
# without ../shared and without the project's virtual environment (see full_runs.sh).
#   .whl/      the project's non-torch dependencies as cp312 wheels (torch/torchaudio are the machine's)
#   .devdata/  the prepared vctk-mini track as FLAC (scripts/gpu/pack_prepared.py pack)
export PYTHONUNBUFFERED=1 BENCH_DATA_ROOT=/nonexistent
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
[ -d prepared/vctk-mini/clean ] || python3 scripts/gpu/pack_prepared.py unpack .devdata/vctk-mini prepared/vctk-mini || exit 1
