# The paper's second stack release: one Dockerfile per service as in the first (build
# tools left in, dependencies and code in one layer), now on the shared base-image
# hierarchy: every service starts from the same build image, so its layers (Debian,
# the Python runtime, the toolchain) download once for the whole stack.
ARG ARCH=amd64
# The base images' namespace: another keeps this machine's hierarchy where it is.
ARG BASES=agile
FROM ${BASES}/python-build:3.11-bookworm-${ARCH}
COPY . /src
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /src/wheelhouse -r /src/requirements.txt /src/project/*.whl
ENV PATH=/opt/venv/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    AGILE_STATE_DIR=/var/lib/agile \
    AGILE_BUS_ADDRESS=unix:path=/run/agile/bus.sock
USER agile
ARG SERVICE
ARG BUS_NAMES
ENV AGILE_SERVICE=${SERVICE} AGILE_BUS_NAMES=${BUS_NAMES}
HEALTHCHECK --interval=10s --timeout=8s --start-period=20s --retries=3 \
  CMD python3 -m services.runtime.health ${AGILE_BUS_NAMES}
CMD ["sh", "-c", "exec agile-gateway service \"$AGILE_SERVICE\""]
