# Baseline: one self-contained Dockerfile, as a developer writes it for one service
# alone: a general-purpose base, the toolchain installed and left in, everything in a
# few big layers, code and dependencies together. (Nothing can be pulled on these
# machines, so its base is the imported Debian; no other layer is shared with the
# other services' images.)
ARG ARCH=amd64
# The base images' namespace: another keeps this machine's hierarchy where it is.
ARG BASES=agile
FROM ${BASES}/debian:bookworm-${ARCH}
# Each service's toolchain layer its own (as if built on its developer's machine): the
# argument is part of the build cache's key for every step below, so one service's
# builds reuse its own cached layers and never another service's.
ARG SERVICE
RUN apt-get update \
 && apt-get install -y python3 python3-pip python3-venv python3-dev build-essential \
 && groupadd --system --gid 10001 agile \
 && useradd --system --uid 10001 --gid agile --home-dir /nonexistent --shell /usr/sbin/nologin agile \
 && install -d -o agile -g agile -m 2770 /var/lib/agile \
 && install -d -o agile -g agile /run/agile
COPY . /src
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /src/wheelhouse -r /src/requirements.txt /src/project/*.whl
ENV PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    AGILE_STATE_DIR=/var/lib/agile \
    AGILE_BUS_ADDRESS=unix:path=/run/agile/bus.sock
USER agile
ARG BUS_NAMES
ENV AGILE_SERVICE=${SERVICE} AGILE_BUS_NAMES=${BUS_NAMES}
HEALTHCHECK --interval=10s --timeout=8s --start-period=20s --retries=3 \
  CMD python3 -m services.runtime.health ${AGILE_BUS_NAMES}
CMD ["sh", "-c", "exec agile-gateway service \"$AGILE_SERVICE\""]
