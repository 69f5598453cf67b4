"""icrm inside RL trainers: `icrm.integrations.trl` (TRL reward functions) and
`icrm.integrations.verl` (verl's ``compute_score``). OpenRLHF calls ``icrm serve``'s
``/get_reward`` over HTTP (`icrm.service`). Each module imports only icrm; the trainers'
own packages are needed only to train."""
