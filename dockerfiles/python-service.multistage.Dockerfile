# Multi-stage build of a Python service on the base-image hierarchy. The build context
# (made by `agile-gateway images build`) holds wheelhouse/ (the dependencies' wheels,
# built on the host: pip cannot verify TLS inside builds here), project/ (the gateway's
# own wheel) and requirements.txt (the service's dependencies).
ARG ARCH=amd64
# The base images' namespace: another keeps this machine's hierarchy where it is.
ARG BASES=agile

# The dependencies: a virtual environment from the wheelhouse, nothing from the network.
FROM ${BASES}/python-build:3.11-bookworm-${ARCH} AS deps
COPY requirements.txt /tmp/requirements.txt
COPY wheelhouse/ /wheels/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /wheels -r /tmp/requirements.txt \
 && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

# The gateway's own code (and its entry points: the device-type plug-ins), apart. Made
# reproducible, so that a one-line change changes one file's bytes and nothing else (a
# delta update then costs about that): byte code checked by the source's hash instead
# of its time, and every time set to zero.
FROM ${BASES}/python-build:3.11-bookworm-${ARCH} AS code
COPY project/ /tmp/
RUN python3 -m venv /tmp/pip \
 && /tmp/pip/bin/pip install --no-cache-dir --no-deps --no-index --no-compile --target /opt/code /tmp/agile_gateway-*.whl \
 && python3 -m compileall -q --invalidation-mode checked-hash /opt/code \
 && find /opt/code -exec touch -h -d @0 {} +

# Deployment: runtime image + venv + code; a code change touches only the last layer.
FROM ${BASES}/python:3.11-bookworm-${ARCH}
COPY --from=deps /opt/venv /opt/venv
COPY --from=code /opt/code /opt/venv/lib/python3.11/site-packages/
ENV PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    AGILE_STATE_DIR=/var/lib/agile \
    AGILE_BUS_ADDRESS=unix:path=/run/agile/bus.sock
USER agile
ARG SERVICE
ARG BUS_NAMES
ENV AGILE_SERVICE=${SERVICE} AGILE_BUS_NAMES=${BUS_NAMES}
HEALTHCHECK --interval=10s --timeout=8s --start-period=20s --retries=3 \
  CMD python3 -m services.runtime.health ${AGILE_BUS_NAMES}
# Which gateway service runs is a setting, so one image serves e.g. both core services.
CMD ["sh", "-c", "exec python3 -m services.runtime.cli service \"$AGILE_SERVICE\""]
