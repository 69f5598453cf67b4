"""verifiers' judge plugin ``icrm-judge``: verifiers imports a plugin id as a top-level
module and takes the one ``Judge`` subclass its ``__all__`` exports. The judge itself is
`icrm.integrations.verifiers.ICRMJudge`."""

from icrm.integrations.verifiers import ICRMJudge, ICRMJudgeConfig

__all__ = ["ICRMJudge", "ICRMJudgeConfig"]
