"""icrm inside RL frameworks, one module each: `icrm.integrations.trl` (TRL reward
functions), `icrm.integrations.verl` (verl's ``compute_score``), `icrm.integrations.openrlhf`
(OpenRLHF's ``/get_reward`` contract, served by ``icrm serve``), `icrm.integrations.slime`
(slime's ``remote_rm`` and ``--custom-rm-path``), `icrm.integrations.areal` (AReaL's
picklable reward function), `icrm.integrations.art` (ART's ``ruler_score_group``),
`icrm.integrations.verifiers` (verifiers' judge plugin ``icrm-judge``) and
`icrm.integrations.ray` (the Ray backend); `icrm.integrations.shared` holds what they
share. Each imports only icrm (verifiers' module excepted: its plugin subclasses
verifiers' ``Judge``); the frameworks' own packages are needed only to train."""
