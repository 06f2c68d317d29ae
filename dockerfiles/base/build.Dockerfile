# Beside the runtime: what building a service's virtual environment needs
# (venv, pip, compilers and headers for any package without a wheel).
ARG BASE
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv python3-pip python3-dev gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
