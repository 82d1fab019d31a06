"""`astrachaos proxy` as a service: the CQL proxy, injectors, write capture and a control API together."""
