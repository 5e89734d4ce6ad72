"""Entry point for Prefect deployments and `python flows/offer_allocation.py`.

The flow itself lives in the package (offerflow.flows) so that Dask workers and `offerflow flow`
import it like any other module; this file only exposes it where prefect.yaml expects flows.
"""

import argparse
import json

from offerflow.flows import offer_allocation

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the offer-allocation Prefect flow once.")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    print(json.dumps(offer_allocation(params_file=args.params), indent=2, default=str))
