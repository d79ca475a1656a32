//! The topic admin RPCs: CreateTopic, GetTopic, UpdateTopic, DeleteTopic.

use super::{EventBusService, Who, validate};
use crate::auth::Action;
use crate::error::ApiError;
use crate::proto::pulsebus::v1 as pb;

impl EventBusService {
    pub(super) async fn create_topic(
        &self,
        who: Who,
        req: pb::CreateTopicRequest,
    ) -> Result<pb::TopicInfo, ApiError> {
        let (name, config) = validate::create_topic(req, &self.limits)?;
        who.check(Action::Admin, &name)?;
        Ok(self.log.create_topic(&name, config).await?.into())
    }

    pub(super) async fn get_topic(
        &self,
        who: Who,
        req: pb::GetTopicRequest,
    ) -> Result<pb::TopicInfo, ApiError> {
        let name = validate::topic_name(&req.name)?;
        if !who.sees(&name) {
            who.check(Action::Subscribe, &name)?;
        }
        Ok(self.log.topic(&name).await?.into())
    }

    pub(super) async fn update_topic(
        &self,
        who: Who,
        req: pb::UpdateTopicRequest,
    ) -> Result<pb::TopicInfo, ApiError> {
        let (name, patch) = validate::update_topic(req, &self.limits)?;
        who.check(Action::Admin, &name)?;
        Ok(self.log.update_topic(&name, patch).await?.into())
    }

    pub(super) async fn delete_topic(
        &self,
        who: Who,
        req: pb::DeleteTopicRequest,
    ) -> Result<pb::DeleteTopicResponse, ApiError> {
        let (name, force) = validate::delete_topic(req)?;
        who.check(Action::Admin, &name)?;
        let removed = self.log.delete_topic(&name, force).await?;
        Ok(pb::DeleteTopicResponse {
            events_deleted: removed.events,
            consumers_deleted: removed.consumers,
        })
    }
}
